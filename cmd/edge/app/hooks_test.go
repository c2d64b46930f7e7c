package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// An application's edge hooks, added through fx, run beside the
// dispatcher's: they see the connection after the dispatcher has
// subscribed it (a push over NATS reaches it), their Admit can refuse a
// client, and their OnClose runs when it leaves.
func TestHooksAddedThroughFxRun(t *testing.T) {
	before := goleak.IgnoreCurrent()
	var mu sync.Mutex
	var seen []string
	note := func(s string) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	connected, closed := make(chan struct{}, 1), make(chan struct{}, 1)
	hooks := app.AddHooks(func(log *zap.Logger) edge.Hooks { // a parameter from the node's graph
		return edge.Hooks{
			Admit: func(session string) error {
				if session == "mallory" {
					return errors.New("not mallory")
				}
				return nil
			},
			OnConnect: func(c *edge.Conn) error {
				note("connect " + c.Session())
				connected <- struct{}{}
				return nil
			},
			OnClose: func(c *edge.Conn, _ wire.CloseReason, _ error) {
				note("close " + c.Session())
				closed <- struct{}{}
			},
		}
	})
	cfg, _ := embeddedConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	node, stop, err := app.Run(ctx, cfg, zap.NewNop(), hooks)
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + node.Addr("tcp").String()
	c, err := client.Dial(ctx, addr, client.Options{Session: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	wait(ctx, t, connected, "alice's OnConnect")
	nc, err := nats.Connect(node.Bus.URL())
	if err != nil {
		t.Fatal(err)
	}
	reply, err := nc.RequestWithContext(ctx, protocol.PushSubject(cfg.Identity.Prefix, "alice", "high"), []byte("hi"))
	nc.Close()
	if ack, perr := protocol.ParseAck(reply); err != nil || perr != nil || ack.Status != protocol.StatusEnqueued {
		t.Fatalf("push to alice: %+v, %v, %v; want enqueued", ack, err, perr)
	}
	if f, err := c.Recv(ctx); err != nil || string(f.Payload) != "hi" {
		t.Fatalf("alice got %q, %v; want hi", f.Payload, err)
	}
	var ce *client.CloseError
	if _, err := client.Dial(ctx, addr, client.Options{Session: "mallory"}); !errors.As(err, &ce) || ce.Reason != wire.CloseShutdown {
		t.Fatalf("mallory: %v; want refused with close reason shutdown", err)
	}
	_ = c.Close()
	wait(ctx, t, closed, "alice's OnClose")
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "connect alice" || seen[1] != "close alice" {
		t.Errorf("hooks saw %q; want alice's connect and close only", seen)
	}
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
}

func wait(ctx context.Context, t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("%s did not run", what)
	}
}

// An application's OnConnect that refuses a client runs after the
// dispatcher has subscribed the session and announced it: the refused
// connection still leaves through OnClose, so its subscription goes with
// it and a push for it is refused by NATS (no responders), not queued for
// a connection that is gone.
func TestRefusingOnConnectLeavesNoSubscription(t *testing.T) {
	before := goleak.IgnoreCurrent()
	hooks := app.AddHooks(func() edge.Hooks {
		return edge.Hooks{OnConnect: func(*edge.Conn) error { return errors.New("not today") }}
	})
	cfg, _ := embeddedConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	node, stop, err := app.Run(ctx, cfg, zap.NewNop(), hooks)
	if err != nil {
		t.Fatal(err)
	}
	var ce *client.CloseError
	if _, err := client.Dial(ctx, "tcp://"+node.Addr("tcp").String(), client.Options{Session: "alice"}); !errors.As(err, &ce) {
		t.Fatalf("alice: %v; want refused", err)
	}
	nc, err := nats.Connect(node.Bus.URL())
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := nc.RequestWithContext(ctx, protocol.PushSubject(cfg.Identity.Prefix, "alice", "high"), []byte("hi"))
		if errors.Is(err, nats.ErrNoResponders) && node.Dispatcher.Stats().Sessions == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("alice's subscription outlived her refused connection: last push %v, %d sessions subscribed",
				err, node.Dispatcher.Stats().Sessions)
		}
		time.Sleep(10 * time.Millisecond) // poll: the subscription drains asynchronously
	}
	nc.Close()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
}
