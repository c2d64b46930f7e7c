package edge_test

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// wsFrame is a client frame of a conformance case, written by hand so
// that it can break every rule: fin, the reserved bits (rsv, 0-7), the
// opcode, masking and the payload as given.
type wsFrame struct {
	fin      bool
	rsv      byte
	op       byte
	payload  []byte
	unmasked bool
}

// conformanceMask is the mask of every masked frame the cases send.
var conformanceMask = [4]byte{0x37, 0xFA, 0x21, 0x3D}

// bytes encodes the frame, with a 16-bit length past 125 bytes.
func (f wsFrame) bytes() []byte {
	b0 := f.rsv<<4 | f.op&0x0F
	if f.fin {
		b0 |= 0x80
	}
	var maskBit byte = 0x80
	if f.unmasked {
		maskBit = 0
	}
	b := []byte{b0}
	if n := len(f.payload); n < 126 {
		b = append(b, maskBit|byte(n))
	} else {
		b = binary.BigEndian.AppendUint16(append(b, maskBit|126), uint16(n))
	}
	if f.unmasked {
		return append(b, f.payload...)
	}
	b = append(b, conformanceMask[:]...)
	for i, c := range f.payload {
		b = append(b, c^conformanceMask[i%4])
	}
	return b
}

// pongMessage is a final frame holding a pong frame of the protocol: a
// complete message the edge accepts and does not answer.
func pongMessage(op byte) wsFrame {
	body, _ := wire.AppendFrame(nil, &wire.Frame{Type: wire.TypePong, Payload: []byte("data")})
	return wsFrame{fin: true, op: op, payload: body}
}

// closeBody is a close frame's payload: the code, then the reason.
func closeBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// wsCase is one row of TestWebSocketConformance: the frames a client
// sends, the close code the edge must answer with (0: none, the
// connection stays open, and answers the close the test then sends with
// 1000) and the pongs it must send, in order.
type wsCase struct {
	name   string
	frames []wsFrame
	code   int
	pongs  []string
}

// TestWebSocketConformance holds the edge to the MUSTs of RFC 6455 a
// server answers (§5.1 masking, §5.2 reserved bits and opcodes, §5.4
// fragments, §5.5 control frames, §7.4 close codes, §8.1 UTF-8), each over
// a real socket to a real edge: what the edge closes with, and that it
// then closes the TCP connection; pings answered with their payload.
// Deliberate choices, in docs/protocol.md: a client's close is answered
// with 1000 (normal) whatever its code, and text messages are read as
// frames of the protocol, as binary ones are, once their UTF-8 is checked.
func TestWebSocketConformance(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	for i, c := range conformanceCases() {
		t.Run(c.name, func(t *testing.T) {
			got := conformanceCase(t, n, "conformance-"+strconv.Itoa(i), c)
			if want := cmp.Or(c.code, 1000); got.code != want {
				t.Errorf("closed with %d; want %d", got.code, want)
			}
			if !got.socketEnded {
				t.Error("the edge did not close the TCP connection after its close frame")
			}
			if got.messages != 1 {
				t.Errorf("%d messages; want 1, the close frame of the protocol", got.messages)
			}
			if len(got.pongs) != len(c.pongs) {
				t.Fatalf("%d pongs; want %d", len(got.pongs), len(c.pongs))
			}
			for i, p := range c.pongs {
				if string(got.pongs[i]) != p {
					t.Errorf("pong %q; want %q", got.pongs[i], p)
				}
			}
		})
	}
}

// conformanceCases are the rows of TestWebSocketConformance.
func conformanceCases() []wsCase {
	msg := pongMessage(wire.WSBinary).payload
	one := func(f wsFrame) []wsFrame { return []wsFrame{f} }
	cases := []wsCase{
		{"unmasked client frame", one(wsFrame{fin: true, op: wire.WSBinary, payload: msg, unmasked: true}), 1002, nil},
		{"unmasked ping", one(wsFrame{fin: true, op: wire.WSPing, unmasked: true}), 1002, nil},
		{"ping of 126 bytes", one(wsFrame{fin: true, op: wire.WSPing, payload: make([]byte, 126)}), 1002, nil},
		{"close of 126 bytes", one(wsFrame{fin: true, op: wire.WSClose, payload: closeBody(1000, strings.Repeat("x", 124))}), 1002, nil},
		{"fragmented ping", []wsFrame{{op: wire.WSPing, payload: []byte("a")}, {fin: true, op: wire.WSContinuation, payload: []byte("b")}}, 1002, nil},
		{"fragmented close", one(wsFrame{op: wire.WSClose, payload: closeBody(1000, "")}), 1002, nil},
		{"RSV1", one(wsFrame{fin: true, rsv: 4, op: wire.WSBinary, payload: msg}), 1002, nil},
		{"RSV2", one(wsFrame{fin: true, rsv: 2, op: wire.WSBinary, payload: msg}), 1002, nil},
		{"RSV3 on a ping", one(wsFrame{fin: true, rsv: 1, op: wire.WSPing}), 1002, nil},
		{"continuation without a start", one(wsFrame{fin: true, op: wire.WSContinuation, payload: []byte{1}}), 1002, nil},
		{"data frame inside a fragmented message", []wsFrame{{op: wire.WSBinary, payload: []byte{1}}, pongMessage(wire.WSBinary)}, 1002, nil},
		{"text frame inside a fragmented message", []wsFrame{{op: wire.WSText, payload: []byte{1}}, pongMessage(wire.WSText)}, 1002, nil},
		{"text message not UTF-8", one(wsFrame{fin: true, op: wire.WSText, payload: []byte{0xCE, 0xBA, 0xE1, 0xBD}}), 1007, nil},
		{"fragmented text message not UTF-8", []wsFrame{{op: wire.WSText, payload: []byte{0xCE}}, {fin: true, op: wire.WSContinuation, payload: []byte{0xFF}}}, 1007, nil},
		{"close reason not UTF-8", one(wsFrame{fin: true, op: wire.WSClose, payload: closeBody(1000, "\xff\xfe")}), 1007, nil},
		{"close of one byte", one(wsFrame{fin: true, op: wire.WSClose, payload: []byte{3}}), 1002, nil},
		{"ping answered with its payload", one(wsFrame{fin: true, op: wire.WSPing, payload: []byte("hello")}), 0, []string{"hello"}},
		{"ping of 125 bytes", one(wsFrame{fin: true, op: wire.WSPing, payload: []byte(strings.Repeat("p", 125))}), 0, []string{strings.Repeat("p", 125)}},
		{"ping between fragments", []wsFrame{{op: wire.WSBinary, payload: msg[:2]}, {fin: true, op: wire.WSPing, payload: []byte("mid")},
			{fin: true, op: wire.WSContinuation, payload: msg[2:]}}, 0, []string{"mid"}},
		{"text message of the protocol", one(pongMessage(wire.WSText)), 0, nil},
		{"empty close", one(wsFrame{fin: true, op: wire.WSClose}), 1000, nil},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, wsCase{fmt.Sprintf("reserved opcode %#x", op), one(wsFrame{fin: true, op: op}), 1002, nil})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, wsCase{fmt.Sprintf("close code %d", code), one(wsFrame{fin: true, op: wire.WSClose, payload: closeBody(code, "")}), 1002, nil})
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, wsCase{fmt.Sprintf("valid close code %d", code), one(wsFrame{fin: true, op: wire.WSClose, payload: closeBody(code, "bye ✓")}), 1000, nil})
	}
	return cases
}

// wsAnswer is what the edge sent back to a conformance case: its pongs'
// payloads, how many messages (frames of the protocol) and its close
// frame's code (-1: a close frame without a code).
type wsAnswer struct {
	pongs       [][]byte
	messages    int
	code        int
	socketEnded bool // the edge closed the TCP connection after its close frame
}

// conformanceCase sends a case's frames on a fresh connection and reads
// what the edge answers, until its close frame, then until the socket
// ends. A case the edge must not close gets a close frame (1000) once its
// pongs have come: the edge's answer to it shows the connection was
// sound.
func conformanceCase(t *testing.T, n *node, session string, c wsCase) wsAnswer {
	t.Helper()
	nc, br := rawWS(t, n, session)
	var out []byte
	for _, f := range c.frames {
		out = append(out, f.bytes()...)
	}
	bye := wsFrame{fin: true, op: wire.WSClose, payload: closeBody(1000, "")}.bytes()
	if c.code == 0 && len(c.pongs) == 0 {
		out = append(out, bye...)
	}
	write(t, nc, out)
	var a wsAnswer
	for a.code == 0 {
		if readAnswer(t, br, &a, len(c.pongs)) && c.code == 0 {
			write(t, nc, bye)
		}
	}
	a.socketEnded = socketEnds(nc, br)
	return a
}

func write(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readAnswer reads one message, or control frames up to the edge's close
// frame or the pongs-th pong, into a. It returns true when it stopped at
// that pong.
func readAnswer(t *testing.T, br *bufio.Reader, a *wsAnswer, pongs int) bool {
	t.Helper()
	_, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, func(op byte, p []byte) error {
		switch {
		case op == wire.WSPong:
			a.pongs = append(a.pongs, append([]byte(nil), p...))
			if len(a.pongs) == pongs {
				return errAnswered
			}
		case op == wire.WSClose && len(p) >= 2:
			a.code = int(binary.BigEndian.Uint16(p))
		case op == wire.WSClose:
			a.code = -1
		}
		if a.code != 0 {
			return errAnswered
		}
		return nil
	})
	switch {
	case errors.Is(err, errAnswered):
		return a.code == 0
	case err != nil:
		t.Fatalf("read: %v (before any close frame)", err)
	}
	a.messages++
	return false
}

// errAnswered stops a read at the frame a case waits for.
var errAnswered = errors.New("answered")

// socketEnds reports whether the edge closes the TCP connection (the
// client sends nothing more), within the test timeout.
func socketEnds(nc net.Conn, br *bufio.Reader) bool {
	_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
	_, err := io.Copy(io.Discard, br)
	return err == nil // EOF: io.Copy reports none
}
