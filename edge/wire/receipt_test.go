package wire

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestReceiptRoundTrip(t *testing.T) {
	ids := []string{"a", strings.Repeat("x", MaxFieldLen), "a", "p-17"}
	b, err := AppendReceipt(nil, ids...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReceiptIDs(b)
	if err != nil || !slices.Equal(got, ids) {
		t.Fatalf("ReceiptIDs = %q, %v; want %q", got, err, ids)
	}
}

func TestReceiptRefusesWhatIsNotIDs(t *testing.T) {
	for _, ids := range [][]string{nil, {""}, {"ok", ""}, {strings.Repeat("x", MaxFieldLen+1)}} {
		if b, err := AppendReceipt([]byte("kept"), ids...); !errors.Is(err, ErrMalformed) || string(b) != "kept" {
			t.Errorf("AppendReceipt(%q) = %q, %v; want dst unchanged and ErrMalformed", ids, b, err)
		}
	}
	for _, p := range [][]byte{nil, {0}, {3, 'a', 'b'}, {1, 'a', 0}, {1, 'a', 2, 'b'}} {
		if ids, err := ReceiptIDs(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("ReceiptIDs(%x) = %q, %v; want ErrMalformed", p, ids, err)
		}
	}
}

// FuzzReceiptIDs: any payload either reads as ids that encode back to the
// same bytes, or fails with ErrMalformed.
func FuzzReceiptIDs(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 'a'})
	f.Add([]byte{2, 'a', 'b', 0})
	f.Add(append([]byte{255}, bytes.Repeat([]byte{'x'}, 255)...))
	f.Fuzz(func(t *testing.T, p []byte) {
		ids, err := ReceiptIDs(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := AppendReceipt(nil, ids...)
		if err != nil || !bytes.Equal(again, p) {
			t.Fatalf("re-encoded %x, %v; input %x", again, err, p)
		}
	})
}
