package tests

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A Session on a node that shuts down comes back, with a fresh token for
// each attempt, to the node that takes its address next (a restart;
// behind a load balancer, another node). A push the producer publishes again with the
// same Push-Id after the reconnect, as it does with one reported
// unacknowledged, reaches the application once.
func TestSessionComesBackToTheNextNode(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	a := startEdge(t, edgeConfig(t, s, "A"))
	var (
		mu     sync.Mutex
		minted int // guarded by mu: token callback calls
		failed int // guarded by mu: connect attempts that failed
		nodes  = make(chan client.State, 8)
	)
	r := client.ReconnectOptions{
		BaseDelay: 10 * time.Millisecond,
		Token: func(context.Context) (string, error) {
			mu.Lock()
			minted++
			mu.Unlock()
			return mint(t, "roamer"), nil
		},
		OnState: func(st client.State) {
			switch st.Kind {
			case client.StateConnected:
				nodes <- st
			case client.StateRetrying:
				mu.Lock()
				failed++
				mu.Unlock()
			}
		},
	}
	sess, err := client.Connect(timeout(t), a.tcp(), client.Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if st := <-nodes; st.Node != "A" {
		t.Fatalf("connected to %q; want A", st.Node)
	}
	if ack := request(t, nc, pushMsg("roamer", "high", "x", "")); ack.Node != "A" {
		t.Fatalf("ack %+v; want enqueued by A", ack)
	}
	if f, err := sess.Recv(timeout(t)); err != nil || f.ID != "x" {
		t.Fatalf("recv: %s, %v; want x", f.ID, err)
	}

	a.shutdown(t)
	cfgB := edgeConfig(t, s, "B")
	cfgB.TCPListen = a.Addr("tcp").String()
	startEdge(t, cfgB)
	st := <-nodes
	var ce *client.CloseError
	if st.Node != "B" || !errors.As(st.Err, &ce) || ce.Reason != wire.CloseShutdown {
		t.Fatalf("reconnected to %q after %v; want B after shutdown", st.Node, st.Err)
	}
	for _, id := range []string{"x", "y"} {
		if ack := request(t, nc, pushMsg("roamer", "high", id, "")); ack.Node != "B" || ack.Status != "enqueued" {
			t.Fatalf("push %s: ack %+v; want enqueued by B", id, ack)
		}
	}
	if f, err := sess.Recv(timeout(t)); err != nil || f.ID != "y" {
		t.Fatalf("recv after the repeat of x: %s, %v; want y", f.ID, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if minted != 2+failed || sess.Duplicates() != 1 {
		t.Fatalf("%d tokens minted for 2 connections and %d failed attempts, %d repeats dropped; want one token per attempt and 1 repeat", minted, failed, sess.Duplicates())
	}
}
