package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func seedFrames(f *testing.F, enc func(*Frame) []byte) {
	for _, fr := range sampleFrames() {
		if len(fr.Payload) > 512 {
			fr.Payload = fr.Payload[:512]
		}
		f.Add(enc(&fr))
	}
}

// FuzzDecode: any input either decodes to a frame that encodes back to the
// same bytes, or fails with ErrMalformed.
func FuzzDecode(f *testing.F) {
	seedFrames(f, func(fr *Frame) []byte { b, _ := AppendFrame(nil, fr); return b })
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 255, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := AppendFrame(nil, &fr)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x; input %x", again, b)
		}
	})
}

// FuzzReadTCP: the length prefix is enforced before any body is read, and a
// stream of frames never yields a body over the limit.
func FuzzReadTCP(f *testing.F) {
	seedFrames(f, func(fr *Frame) []byte { b, _ := AppendTCP(nil, fr); return b })
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 1024
		r := bufio.NewReader(bytes.NewReader(b))
		for {
			body, err := ReadTCP(r, nil, max)
			if err != nil {
				checkStreamErr(t, err)
				return
			}
			if len(body) > max || len(body) < HeaderLen {
				t.Fatalf("body of %d bytes passed the limits", len(body))
			}
			_, _ = Decode(body)
		}
	})
}

// FuzzReadWS: whatever a client sends, the WebSocket reader returns messages
// within the limit or a classified error, and never panics.
func FuzzReadWS(f *testing.F) {
	mask := [4]byte{0xA, 0xB, 0xC, 0xD}
	seedFrames(f, func(fr *Frame) []byte { b, _ := AppendWSMasked(nil, fr, mask); return b })
	f.Add(AppendWSClose(nil, 1000, "bye", &mask))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 1024
		r := bufio.NewReader(bytes.NewReader(b))
		for {
			msg, err := ReadWS(r, nil, max, true, func(op byte, p []byte) error {
				if len(p) > maxControl {
					t.Fatalf("control payload of %d bytes", len(p))
				}
				return nil
			})
			if err != nil {
				checkStreamErr(t, err)
				return
			}
			if len(msg) > max {
				t.Fatalf("message of %d bytes passed the limit", len(msg))
			}
			_, _ = Decode(msg)
		}
	})
}

func checkStreamErr(t *testing.T, err error) {
	t.Helper()
	switch {
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, ErrMalformed), errors.Is(err, ErrTooLarge):
	default:
		t.Fatalf("unclassified error %v", err)
	}
}
