package edge

import (
	"bufio"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// A WebSocket client that only answers pings leaves its connection waiting
// without a read buffer: after each pong the reader gives its buffer back
// at once instead of holding it until the next ping. Each time a ping
// arrives, the connection's reader must be waiting for readability, not
// holding a buffer in readFrames.
func TestPongsLeaveNoReadBuffer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PingInterval, cfg.IdleTimeout = 50*time.Millisecond, time.Hour
	addr, _ := serveWebSocket(t, Options{Config: cfg, Auth: DevAuth{}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, "ws://"+addr+"/?session=pongs")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if br == nil {
		br = bufio.NewReader(nc)
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	const samples = 10
	holding, pings := 0, 0
	onControl := func(op byte, p []byte) error {
		if op != wire.WSPing {
			return nil
		}
		pings++
		if pings > 1 && readerHoldsBuffer() { // the first comes before any pong
			holding++
		}
		if pings > samples {
			return errEnough
		}
		mask := [4]byte{5, 6, 7, 8}
		_, err := nc.Write(wire.AppendWSControl(nil, wire.WSPong, p, &mask))
		return err
	}
	for {
		_, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, onControl)
		if errors.Is(err, errEnough) {
			break
		}
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
	}
	if holding > 0 {
		t.Fatalf("the reader held a buffer at %d of %d pings; want none", holding, samples)
	}
}

var errEnough = errors.New("enough pings")

// readerHoldsBuffer reports whether a connection reader is in readFrames.
func readerHoldsBuffer() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), ".(*Conn).readFrames(")
}
