package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// The 23-byte WebSocket message of issue 11 (a 2-byte first fragment, then
// a continuation claiming 2^64-1 bytes) closes its own connection with
// reason protocol; the node and its other sessions carry on.
func TestWrappingContinuationClosesOnlyItsConnection(t *testing.T) {
	closed := make(chan wire.CloseReason, 1)
	n := startNode(t, edge.DefaultConfig(), edge.Options{Hooks: edge.Hooks{
		OnClose: func(c *edge.Conn, r wire.CloseReason, _ error) {
			if c.Session() == "attacker" {
				closed <- r
			}
		},
	}})
	bystander := dial(t, n.ws, "bystander", client.Options{})
	nc, br := rawWS(t, n, "attacker")
	if _, err := nc.Write(wrappingContinuation()); err != nil {
		t.Fatal(err)
	}
	if frame, code := readUntilWSClose(t, br); frame != string(wire.CloseProtocol) || code != 1002 {
		t.Fatalf("attacker got close frame %q, WebSocket close %d; want protocol, 1002", frame, code)
	}
	_ = nc.Close() // as a client does after the close handshake
	select {
	case r := <-closed:
		if r != wire.CloseProtocol {
			t.Fatalf("server closed the attacker with %q; want protocol", r)
		}
	case <-time.After(testTimeout):
		t.Fatal("the attacker's connection did not end")
	}
	mustTryPush(t, n.handle(t, "bystander"), push.High, "after")
	if f := recv(t, bystander); f.ID != "after" {
		t.Fatalf("bystander got %q; want the push sent after the attack", f.ID)
	}
}

// wrappingContinuation is the attack, masked as a client must send it.
func wrappingContinuation() []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := wire.AppendWSHeader(nil, wire.WSBinary, 2, &mask)
	b[0] &^= 0x80 // not the last fragment
	b = append(b, 1^mask[0], 1^mask[1])
	b = append(b, 0x80|wire.WSContinuation, 0x80|127)
	b = binary.BigEndian.AppendUint64(b, math.MaxUint64)
	b = append(b, mask[:]...)
	return append(b, 0)
}

// rawWS connects a development-mode WebSocket client by hand and reads the
// welcome.
func rawWS(t *testing.T, n *node, session string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, br, _, err := ws.Dial(context.Background(), n.ws+"?session="+session)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if br == nil {
		br = bufio.NewReader(nc)
	}
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	msg, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, func(byte, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if f, err := wire.Decode(msg); err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("first frame %v, %v; want welcome", f.Type, err)
	}
	return nc, br
}

// readUntilWSClose reads server messages until the WebSocket close frame
// and returns the name of the protocol close frame before it and the
// WebSocket close code.
func readUntilWSClose(t *testing.T, br *bufio.Reader) (frame string, code uint16) {
	t.Helper()
	for {
		wsClosed := false
		msg, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, func(op byte, p []byte) error {
			if op == wire.WSClose && len(p) >= 2 {
				code, wsClosed = binary.BigEndian.Uint16(p), true
			}
			return nil
		})
		if wsClosed {
			return frame, code
		}
		if err != nil {
			t.Fatalf("read: %v (close frame %q seen)", err, frame)
		}
		if f, _ := wire.Decode(msg); f.Type == wire.TypeClose {
			frame = f.Name
		}
	}
}

// TCP clients that each send only a length header claiming a frame of
// about 1 MiB pin a small part of that: memory follows the bytes that
// arrive, not the length announced.
func TestAnnouncedFramesDoNotPinMemory(t *testing.T) {
	const conns, claimed = 100, wire.DefaultMaxFrameSize - 1
	cfg := edge.DefaultConfig()
	cfg.PingInterval, cfg.IdleTimeout = time.Hour, time.Hour // no wake-up while measuring
	n := startNode(t, cfg, edge.Options{})
	raws := make([]*rawConn, conns)
	for i := range raws {
		raws[i] = rawTCP(t, n, fmt.Sprintf("claim-%d", i))
	}
	before := heapInuse()
	for _, r := range raws {
		r.sendBytes(t, binary.BigEndian.AppendUint32(nil, claimed))
	}
	waitGoroutinesIn(t, "edge/wire.ReadTCP(", conns)
	grew := int64(heapInuse()) - int64(before)
	if limit := int64(conns * claimed / 4); grew > limit {
		t.Fatalf("%d connections each announcing %d bytes grew the heap by %d bytes; want under %d", conns, claimed, grew, limit)
	}
	t.Logf("%d announced frames of %d bytes: heap grew by %d bytes", conns, claimed, grew)
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// waitGoroutinesIn waits until at least n goroutines have fn on their
// stack, looking every few milliseconds.
func waitGoroutinesIn(t *testing.T, fn string, n int) {
	t.Helper()
	timeout := time.After(testTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		count := bytes.Count(allStacks(), []byte(fn))
		if count >= n {
			return
		}
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("%d goroutines in %s after %v; want %d", count, fn, testTimeout, n)
		}
	}
}

func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		if n := runtime.Stack(buf, true); n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A malformed receipt closes its connection with reason protocol, and the
// close frame says what was wrong with it.
func TestMalformedReceiptClosesSayingWhy(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	r := rawTCP(t, n, "sloppy")
	r.send(t, wire.Frame{Type: wire.TypeReceipt, Payload: []byte{5, 'a'}})
	f := r.next(t)
	if f.Type != wire.TypeClose || f.Name != string(wire.CloseProtocol) || !strings.Contains(string(f.Payload), "receipt") {
		t.Fatalf("got %v %q %q; want a protocol close saying what was wrong with the receipt", f.Type, f.Name, f.Payload)
	}
}
