package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"testing"
	"testing/iotest"
)

// wrappingContinuation is the attack of issue 11: a first fragment of two
// bytes, then a continuation whose 64-bit length is chosen so that adding
// it to the two bytes already held wraps past the limit check.
func wrappingContinuation(length uint64) []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := appendFragment(nil, WSBinary, false, []byte{1, 1}, mask)
	b = append(b, 0x80|WSContinuation, 0x80|127)
	b = binary.BigEndian.AppendUint64(b, length)
	b = append(b, mask[:]...)
	return append(b, 0)
}

// A continuation length near 2^64 (wrapping the sum) or past the largest
// int is refused as too large; it never reaches a slice expression.
func TestWSContinuationLengthCannotWrap(t *testing.T) {
	if n := len(wrappingContinuation(math.MaxUint64)); n != 23 {
		t.Fatalf("the attack is %d bytes; want the 23 of issue 11", n)
	}
	for _, length := range []uint64{math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64 - 2, 1 << 63, math.MaxInt64, math.MaxInt64 + 2} {
		in := wrappingContinuation(length)
		_, err := readWSNoPanic(t, in, DefaultMaxFrameSize)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("continuation of %#x bytes: got %v; want ErrTooLarge", length, err)
		}
	}
}

// readWSNoPanic reads one client message, turning a panic into a failure.
func readWSNoPanic(t *testing.T, in []byte, max int) (msg []byte, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("ReadWS panicked on %x: %v", in, p)
		}
	}()
	return ReadWS(bufio.NewReader(bytes.NewReader(in)), nil, max, true, ignoreControl)
}

func ignoreControl(byte, []byte) error { return nil }

// readClientFrame reads one frame a client sent, the way the edge does.
func readClientFrame(r *bufio.Reader, buf []byte, tcp bool) ([]byte, error) {
	if tcp {
		return ReadTCP(r, buf, DefaultMaxFrameSize)
	}
	return ReadWS(r, buf, DefaultMaxFrameSize, true, ignoreControl)
}

// allocated reports the bytes of heap f allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// announced is a length just under the limit that a peer claims and never
// sends: only a few bytes follow it.
const announced = DefaultMaxFrameSize - 1

// A header that claims a large frame commits memory only for the bytes
// that arrive, not for the length it claims.
func TestReadsDoNotCommitAnnouncedLength(t *testing.T) {
	mask := [4]byte{5, 6, 7, 8}
	tcp := binary.BigEndian.AppendUint32(nil, announced)
	ws := AppendWSHeader(nil, WSBinary, announced, &mask)
	fragmented := appendFragment(nil, WSBinary, false, []byte{1, 1}, mask)
	fragmented = append(fragmented, AppendWSHeader(nil, WSContinuation, announced-2, &mask)...)
	for name, tc := range map[string]struct {
		head []byte
		tcp  bool
	}{"tcp": {tcp, true}, "ws": {ws, false}, "ws fragments": {fragmented, false}} {
		in := append(append([]byte(nil), tc.head...), make([]byte, 100)...)
		r := bufio.NewReaderSize(bytes.NewReader(in), 64) // allocated before measuring
		var err error
		n := allocated(func() { _, err = readClientFrame(r, nil, tc.tcp) })
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: got %v; want io.ErrUnexpectedEOF", name, err)
		}
		if n > 2*firstChunk {
			t.Errorf("%s: a header claiming %d bytes, followed by 100, allocated %d bytes; want at most %d", name, announced, n, 2*firstChunk)
		}
	}
}

// Many small fragments cost memory in proportion to the message, not to
// the square of the fragment count.
func TestWSManyFragmentsGrowGeometrically(t *testing.T) {
	const fragments, size = 4096, 16
	mask := [4]byte{3, 1, 4, 1}
	var stream, want []byte
	for i := range fragments {
		p := bytes.Repeat([]byte{byte(i)}, size)
		op := WSContinuation
		if i == 0 {
			op = WSBinary
		}
		stream = appendFragment(stream, op, i == fragments-1, p, mask)
		want = append(want, p...)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	var got []byte
	var err error
	n := allocated(func() { got, err = ReadWS(r, nil, DefaultMaxFrameSize, true, ignoreControl) })
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("reassembled %d bytes, %v; want the %d sent", len(got), err, len(want))
	}
	if limit := uint64(4 * len(want)); n > limit {
		t.Fatalf("%d fragments of %d bytes allocated %d bytes; want at most %d", fragments, size, n, limit)
	}
}

// Frames larger than the first chunk arrive intact however the bytes are
// split, and a buffer with room is used as it is.
func TestLargeFramesArriveInPieces(t *testing.T) {
	f := Frame{Type: TypeRequest, ID: "big", Payload: make([]byte, DefaultMaxFrameSize-100)}
	for i := range f.Payload {
		f.Payload[i] = byte(i * 7)
	}
	whole, _ := AppendFrame(nil, &f)
	tcp, _ := AppendTCP(nil, &f)
	ws, _ := AppendWSMasked(nil, &f, [4]byte{9, 9, 9, 9})
	mask := [4]byte{2, 7, 1, 8}
	split := appendFragment(nil, WSBinary, false, whole[:5000], mask)
	split = appendFragment(split, WSContinuation, true, whole[5000:], mask)
	for name, tc := range map[string]struct {
		in  []byte
		tcp bool
	}{"tcp": {tcp, true}, "ws": {ws, false}, "ws fragments": {split, false}} {
		for _, src := range []struct {
			how string
			r   io.Reader
			buf []byte
		}{
			{"one byte at a time", iotest.OneByteReader(bytes.NewReader(tc.in)), nil},
			{"in halves", iotest.HalfReader(bytes.NewReader(tc.in)), make([]byte, 0, 3000)},
			{"into a buffer with room", bytes.NewReader(tc.in), make([]byte, 0, len(whole))},
		} {
			got, err := readClientFrame(bufio.NewReader(src.r), src.buf, tc.tcp)
			if err != nil || !bytes.Equal(got, whole) {
				t.Fatalf("%s, %s: %d bytes, %v; want the %d-byte frame", name, src.how, len(got), err, len(whole))
			}
			if src.buf != nil && cap(src.buf) >= len(whole) && &got[0] != &src.buf[:1][0] {
				t.Fatalf("%s, %s: a buffer with room was replaced", name, src.how)
			}
		}
	}
}
