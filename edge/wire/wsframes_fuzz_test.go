package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"unicode/utf8"
)

// A wsProgram is a FuzzReadWSFrames input: a sequence of client frames,
// each two bytes and its payload. The first byte is the frame's first
// header byte as sent (FIN, reserved bits, opcode); the second says how
// the length is written (its top two bits: 7-bit, 16-bit or 64-bit
// length, or a huge length announced) and the payload length (its low
// six bits, the bytes that follow). A frame with a huge length is the
// last one; so is one whose payload the program cuts short. Every frame
// is masked, as a client must. The fuzzer thus writes the messages that
// raw bytes almost never reach: many fragments, control frames between
// them, continuations out of order, lengths past every limit.
type wsProgram []byte

// wsProgramFrame is one frame of a program.
type wsProgramFrame struct {
	b0        byte
	encoding  byte   // 0: 7-bit length, 1: 16-bit, 2: 64-bit, 3: huge
	announced uint64 // the length in the header
	payload   []byte // the bytes sent after the header (fewer than announced: cut short)
}

// hugeLengths are the lengths a huge frame announces: just past the
// limit, past 16 and 32 bits, past the largest int, and the ones that
// wrap a sum.
var hugeLengths = []uint64{fuzzMax + 1, 1 << 16, 1 << 32, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64 - 1, math.MaxUint64}

// frames decodes the program.
func (p wsProgram) frames() []wsProgramFrame {
	var out []wsProgramFrame
	for len(p) >= 2 {
		f := wsProgramFrame{b0: p[0], encoding: p[1] >> 6, announced: uint64(p[1] & 0x3F)}
		n := int(f.announced)
		if f.encoding == 3 {
			f.announced = hugeLengths[n%len(hugeLengths)]
			n = int(min(f.announced, uint64(len(p)-2)))
		}
		f.payload = p[2 : 2+min(n, len(p)-2)]
		out, p = append(out, f), p[2+len(f.payload):]
		if f.encoding == 3 || uint64(len(f.payload)) < f.announced {
			break
		}
	}
	return out
}

// bytes is the stream the program sends.
func (p wsProgram) bytes() []byte {
	mask := [4]byte{0x5A, 0xC3, 0x0F, 0x99}
	var out []byte
	for _, f := range p.frames() {
		out = append(out, f.b0)
		switch {
		case f.encoding == 0:
			out = append(out, 0x80|byte(f.announced))
		case f.encoding == 1:
			out = binary.BigEndian.AppendUint16(append(out, 0x80|126), uint16(f.announced))
		default:
			out = binary.BigEndian.AppendUint64(append(out, 0x80|127), f.announced)
		}
		out = append(out, mask[:]...)
		for i, c := range f.payload {
			out = append(out, c^mask[i%4])
		}
	}
	return out
}

// wsOutcome is what reading a stream gave: the messages and control
// frames in order, and how it ended.
type wsOutcome struct {
	events []string
	end    string // "end" (EOF, or cut short), "malformed", "utf8", "too large"
}

// wsModel is what RFC 6455 (and ReadWS's limit) says the program's stream
// reads as, worked out from its frames rather than its bytes.
func wsModel(frames []wsProgramFrame, max int) wsOutcome {
	var o wsOutcome
	var msg []byte
	inMessage, text := false, false
	for _, f := range frames {
		fin, op, cut := f.b0&0x80 != 0, f.b0&0x0F, uint64(len(f.payload)) < f.announced
		control := op >= WSClose
		switch {
		case f.b0&0x70 != 0, op > WSBinary && op < WSClose, op > WSPong, control && !fin,
			control && f.announced > maxControl, !control && (op == WSContinuation) != inMessage:
			o.end = "malformed"
		case !control && uint64(len(msg))+f.announced > uint64(max), !control && f.announced > uint64(max):
			o.end = "too large"
		case cut:
			o.end = "end"
		case control:
			if o.end = modelClose(op, f.payload); o.end == "" {
				o.events = append(o.events, fmt.Sprintf("control %#x %q", op, f.payload))
			}
		default:
			if !inMessage {
				inMessage, text = true, op == WSText
			}
			msg = append(msg, f.payload...)
			if fin && text && !utf8.Valid(msg) {
				o.end = "utf8"
			} else if fin {
				o.events, msg, inMessage = append(o.events, fmt.Sprintf("message %q", msg)), nil, false
			}
		}
		if o.end != "" {
			return o
		}
	}
	o.end = "end"
	return o
}

// modelClose is "" for a control frame RFC 6455 accepts, else how the
// read ends: a close frame's payload is empty, or a code (1000-1003,
// 1007-1014, 3000-4999) and a UTF-8 reason.
func modelClose(op byte, p []byte) string {
	if op != WSClose || len(p) == 0 {
		return ""
	}
	if len(p) == 1 {
		return "malformed"
	}
	code := int(p[0])<<8 | int(p[1])
	valid := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
	switch {
	case !valid:
		return "malformed"
	case !utf8.Valid(p[2:]):
		return "utf8"
	}
	return ""
}

// readOutcome reads the stream with ReadWS as the edge does.
func readOutcome(t *testing.T, in []byte) wsOutcome {
	var o wsOutcome
	r := bufio.NewReader(bytes.NewReader(in))
	onControl := func(op byte, p []byte) error {
		o.events = append(o.events, fmt.Sprintf("control %#x %q", op, p))
		return nil
	}
	for {
		msg, err := ReadWS(r, nil, fuzzMax, true, onControl)
		switch {
		case err == nil:
			o.events = append(o.events, fmt.Sprintf("message %q", msg))
			continue
		case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
			o.end = "end"
		case errors.Is(err, ErrInvalidUTF8):
			o.end = "utf8"
		case errors.Is(err, ErrMalformed):
			o.end = "malformed"
		case errors.Is(err, ErrTooLarge):
			o.end = "too large"
		default:
			t.Fatalf("unclassified error %v", err)
		}
		return o
	}
}

// FuzzReadWSFrames: the WebSocket reader reads any sequence of client
// frames (see wsProgram) exactly as RFC 6455 says: the same messages,
// control frames and ending as a model worked out from the frames.
func FuzzReadWSFrames(f *testing.F) {
	for _, p := range wsProgramSeeds() {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		p := wsProgram(prog[:min(len(prog), fuzzPrefix)])
		want, got := wsModel(p.frames(), fuzzMax), readOutcome(t, p.bytes())
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("frames %+v\nread  %v\nmodel %v", p.frames(), got, want)
		}
	})
}

// wsProgramSeeds are programs of the cases RFC 6455 names and of every
// input that ever broke the reader.
func wsProgramSeeds() []wsProgram {
	fr := func(b0 byte, payload string) wsProgram {
		return append(wsProgram{b0, byte(len(payload))}, payload...)
	}
	cat := func(ps ...wsProgram) (out wsProgram) {
		for _, p := range ps {
			out = append(out, p...)
		}
		return out
	}
	return []wsProgram{
		fr(0x80|WSBinary, "\x01\x01\x00\x00"),
		cat(fr(WSBinary, "ab"), fr(0x80|WSPing, "p"), fr(WSContinuation, "cd"), fr(0x80|WSPong, ""), fr(0x80|WSContinuation, "ef")),
		cat(fr(WSText, "\xce"), fr(0x80|WSContinuation, "\xba")),
		fr(0x80|WSText, "\xce\xba\xe1\xbd"),
		fr(0x80|WSClose, "\x03\xe8bye"),
		fr(0x80|WSClose, "\x03\xed"),
		fr(0x80|WSClose, "\x03"),
		fr(0x80|WSClose, "\x03\xe8\xff"),
		fr(WSPing, "x"),
		fr(0x80|0x40|WSBinary, "r"),
		fr(0x80|0x3, ""),
		fr(0x80|WSContinuation, "c"),
		cat(fr(WSBinary, "a"), fr(0x80|WSBinary, "b")),
		{WSBinary, 2, 1, 1, 0x80 | WSContinuation, 0xC0 | 6, 0}, // issue 11: a continuation of 2^64-1 bytes
		{WSBinary, 2, 1, 1, 0x80 | WSContinuation, 0xC0 | 4, 0}, // and of 2^63
		{0x80 | WSPing, 0xC0 | 1},                               // a ping announcing 64 KiB, past the control limit
		cat(fr(WSBinary, string(make([]byte, 40))), fr(0x80|WSContinuation, string(make([]byte, 40)))), // fragments past the limit
		{0x80 | WSBinary, 0x40 | 3, 1, 2, 3}, // a 16-bit length
		{0x80 | WSBinary, 0x80 | 9, 1, 2},    // a 64-bit length, cut short
	}
}
