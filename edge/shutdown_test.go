package edge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// A client that stops reading fills its socket; the shared flusher passes
// it on and keeps writing for everyone else. At shutdown, what the stuck
// client could not take is dead-lettered as shutdown, while a reading
// client gets everything that was queued for it, after the close frame.
func TestStuckClientAndShutdown(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.Flushers = 1
	cfg.QueueLen, cfg.QueueBytes = 10_000, 64<<20
	cfg.DrainTimeout = 300 * time.Millisecond
	n := startNode(t, cfg, edge.Options{})
	rawTCP(t, n, "stuck") // never reads again
	hs := n.handle(t, "stuck")
	big := make([]byte, 64<<10)
	const stuckPushes = 300 // 19 MB: far more than loopback socket buffers hold
	for i := range stuckPushes {
		if err := hs.TryPush(push.Low, edge.Envelope{Frame: edge.Frame{ID: fmt.Sprint(i), Payload: big}}); err != nil {
			t.Fatal(err)
		}
	}
	reader := dial(t, n.tcp, "reader", client.Options{})
	hr := n.handle(t, "reader")
	for i := range 100 {
		mustTryPush(t, hr, push.High, fmt.Sprint(i))
		if f := recv(t, reader); f.ID != fmt.Sprint(i) {
			t.Fatalf("reader got %s; want %d", f.ID, i)
		}
	}

	// Queue pushes for the reader that it will only get during the drain.
	for i := range 50 {
		mustTryPush(t, hr, push.High, fmt.Sprintf("late-%d", i))
	}
	n.stop(t)

	for i := range 50 {
		f := recv(t, reader)
		if f.ID != fmt.Sprintf("late-%d", i) {
			t.Fatalf("during drain the reader got %s; want late-%d", f.ID, i)
		}
	}
	if _, err := reader.Recv(context.Background()); !isClose(err, "shutdown") {
		t.Fatalf("reader ended with %v; want close reason shutdown", err)
	}
	dls := n.sink.all()
	if len(dls) == 0 || len(dls) >= stuckPushes {
		t.Fatalf("%d dead letters for the stuck client; want some but not all of %d", len(dls), stuckPushes)
	}
	for _, dl := range dls {
		if dl.Session != "stuck" || dl.Reason != push.ReasonShutdown {
			t.Fatalf("dead letter %s/%s as %s; want stuck's pushes as shutdown", dl.Session, dl.Frame.ID, dl.Reason)
		}
	}
	checkTail(t, dls, stuckPushes)
}

// checkTail checks that nothing was lost on a connection that took the
// first pushes of 0..total-1 and no more: the dead letters are exactly the
// rest, each once.
func checkTail(t *testing.T, dls []edge.DeadLetter, total int) {
	t.Helper()
	seen := make([]bool, total)
	for _, dl := range dls {
		i, err := strconv.Atoi(dl.Frame.ID)
		if err != nil || i < 0 || i >= total || seen[i] {
			t.Fatalf("dead letter %q is unknown or repeated", dl.Frame.ID)
		}
		seen[i] = true
	}
	for i := total - len(dls); i < total; i++ {
		if !seen[i] {
			t.Fatalf("push %d is neither written nor dead-lettered (dead letters start at %d)", i, total-len(dls))
		}
	}
}

func isClose(err error, reason wire.CloseReason) bool {
	var ce *client.CloseError
	return errors.As(err, &ce) && ce.Reason == reason
}

// A server that is shut down refuses new clients and its Serve calls
// return ErrServerClosed.
func TestServeAfterShutdown(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	n.stop(t)
	if err := n.srv.ServeTCP(listen(t)); !errors.Is(err, edge.ErrServerClosed) {
		t.Fatalf("ServeTCP after Shutdown: %v; want ErrServerClosed", err)
	}
}

// A client whose socket stops taking bytes for WriteTimeout is closed as
// too_slow; what its socket never took is dead-lettered as write_error.
func TestWriteTimeoutEndsStuckClient(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.WriteTimeout = 100 * time.Millisecond
	cfg.QueueLen, cfg.QueueBytes = 10_000, 64<<20
	closed := make(chan wire.CloseReason, 1)
	n := startNode(t, cfg, edge.Options{Hooks: edge.Hooks{OnClose: func(_ *edge.Conn, r wire.CloseReason, _ error) { closed <- r }}})
	rawTCP(t, n, "stuck") // never reads again
	h := n.handle(t, "stuck")
	const pushes = 300
	big := make([]byte, 64<<10)
	for i := range pushes {
		if err := h.TryPush(push.High, edge.Envelope{Frame: edge.Frame{ID: strconv.Itoa(i), Payload: big}}); err != nil {
			t.Fatal(err)
		}
	}
	if r := <-closed; r != wire.CloseTooSlow {
		t.Fatalf("closed with %q; want too_slow", r)
	}
	dls := n.sink.all()
	if len(dls) == 0 {
		t.Fatal("no dead letters for a client that took almost nothing")
	}
	for _, dl := range dls {
		if dl.Reason != push.ReasonWriteError {
			t.Fatalf("dead letter %s as %s; want write_error", dl.Frame.ID, dl.Reason)
		}
	}
	checkTail(t, dls, pushes)
}

// A client that connects and says nothing is dropped after the handshake
// timeout.
func TestHandshakeTimeout(t *testing.T) {
	cfg := edge.DefaultConfig()
	cfg.HandshakeTimeout = 100 * time.Millisecond
	n := startNode(t, cfg, edge.Options{})
	for _, addr := range []string{n.tcpAddr, n.wsAddr} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("%s: silent client read %v; want EOF when the server gives up", addr, err)
		}
		nc.Close()
	}
}
