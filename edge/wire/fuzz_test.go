package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
)

// The stream targets read with a small limit and look at a bounded prefix
// of their inputs. Every path of the readers is reachable within these
// sizes; beyond them an input only grows, and the fuzzer spends its time
// minimizing large inputs (quadratic in their length) instead of running
// new ones: execs/sec then sat at 0 for tens of seconds.
const (
	fuzzMax    = 64  // message and frame limit
	fuzzPrefix = 256 // the most input bytes a stream target reads
)

// seeds encodes the sample frames that fit fuzzMax, each with a payload of
// at most 16 bytes.
func seeds(enc func(*Frame) []byte) [][]byte {
	var out [][]byte
	for _, fr := range sampleFrames() {
		fr.Payload = fr.Payload[:min(len(fr.Payload), 16)]
		if fr.Len() <= fuzzMax {
			out = append(out, enc(&fr))
		}
	}
	return out
}

// FuzzDecode: any input either decodes to a frame that encodes back to the
// same bytes, or fails with ErrMalformed.
func FuzzDecode(f *testing.F) {
	for _, b := range seeds(func(fr *Frame) []byte { b, _ := AppendFrame(nil, fr); return b }) {
		f.Add(b)
	}
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
	for _, b := range seeds(func(fr *Frame) []byte { b, _ := AppendTCP(nil, fr); return b }) {
		f.Add(b)
	}
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, fuzzMax, 1, 1, 0}) // a frame announced, three bytes sent
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b[:min(len(b), fuzzPrefix)]))
		for {
			body, err := ReadTCP(r, nil, fuzzMax)
			if err != nil {
				checkStreamErr(t, err)
				return
			}
			if len(body) > fuzzMax || len(body) < HeaderLen {
				t.Fatalf("body of %d bytes passed the limits", len(body))
			}
		}
	})
}

// FuzzReadWS: whatever a peer sends, the WebSocket reader returns messages
// within the limit or a classified error, and never panics. The input is
// any bytes (head), then a frame header the target writes from b0 (FIN,
// reserved bits, opcode) and a 64-bit length, then any bytes (tail). The
// fuzzer mutates a number in steps of up to 100 and never wraps it, so the
// length is an int64 read as the header's unsigned 64 bits: steps around 0
// reach short frames, frames at the limit and the lengths just below 2^64
// that wrap a sum. A head that opens a fragmented message followed by such
// a continuation, the 23-byte attack of issue 11 (testdata/fuzz/FuzzReadWS),
// is a few mutations from the seeds; with raw bytes alone the fuzzer never
// forged that header.
func FuzzReadWS(f *testing.F) {
	mask := [4]byte{0xA, 0xB, 0xC, 0xD}
	for _, b := range seeds(func(fr *Frame) []byte { b, _ := AppendWSMasked(nil, fr, mask); return b }) {
		seedWS(f, b, 0x80|WSPing, 0, nil)
	}
	seedWS(f, AppendWSClose(nil, 1000, "bye", &mask), WSPing, 0, nil)
	seedWS(f, []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, WSBinary, 0, nil)
	first := appendFragment(nil, WSBinary, false, []byte{1, 2}, mask)
	for _, length := range []int64{0, fuzzMax - 2, fuzzMax - 1, math.MaxInt64, math.MinInt64} {
		seedWS(f, first, 0x80|WSContinuation, length, bytes.Repeat([]byte{7}, 8))
	}
	fromServer, _ := AppendWS(nil, &Frame{Type: TypeWelcome, ID: "s1", Name: "node-a"})
	f.Add(fromServer, 0x80|WSBinary, int64(0), []byte(nil), false)
	f.Fuzz(func(t *testing.T, head []byte, b0 byte, length int64, tail []byte, fromClient bool) {
		r := bufio.NewReader(bytes.NewReader(wsFuzzInput(head, b0, length, tail, fromClient)))
		for {
			msg, err := ReadWS(r, nil, fuzzMax, fromClient, func(op byte, p []byte) error {
				if len(p) > maxControl {
					t.Fatalf("control payload of %d bytes", len(p))
				}
				return nil
			})
			if err != nil {
				checkStreamErr(t, err)
				return
			}
			if len(msg) > fuzzMax {
				t.Fatalf("message of %d bytes passed the limit", len(msg))
			}
		}
	})
}

// seedWS adds a client input of FuzzReadWS.
func seedWS(f *testing.F, head []byte, b0 byte, length int64, tail []byte) {
	f.Add(head, b0, length, tail, true)
}

// wsFuzzInput is the byte stream of a FuzzReadWS input: head (at most
// fuzzPrefix bytes), the written header with 64-bit length (masked when
// the bytes are from a client), then tail (at most 2×fuzzMax bytes).
func wsFuzzInput(head []byte, b0 byte, length int64, tail []byte, fromClient bool) []byte {
	in := append([]byte(nil), head[:min(len(head), fuzzPrefix)]...)
	if fromClient {
		in = append(in, b0, 0x80|127)
		in = binary.BigEndian.AppendUint64(in, uint64(length))
		in = append(in, 0xA, 0xB, 0xC, 0xD)
	} else {
		in = append(in, b0, 127)
		in = binary.BigEndian.AppendUint64(in, uint64(length))
	}
	return append(in, tail[:min(len(tail), 2*fuzzMax)]...)
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
