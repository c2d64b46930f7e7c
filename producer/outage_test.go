package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A push published while NATS is away waits in nats.go's reconnect buffer,
// and NATS can say nobody holds its session only once it is back, however
// long past the status window that is: the push is not forgotten in the
// meantime, and is parked offline after the reconnect.
func TestPublishThroughAnOutageLongerThanTheWindow(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Port = natstest.FreePort(t)
	s := natstest.StartWith(t, opts)
	if _, err := dlq.EnsureStream(t.Context(), natstest.JetStream(t, s), protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	const window = 100 * time.Millisecond
	p, err := producer.New(nc, producer.Options{Name: "outage", StatusWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	waitUntil(t, "the producer's connection to see NATS gone", func() bool { return !nc.IsConnected() })
	if err := p.Publish("nobody", push.High, []byte("during the outage"), producer.WithID("outage-1")); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	// The outage lasts ten windows: the producer's own clock runs on.
	waitUntil(t, "ten status windows to pass", func() bool { return time.Since(published) > 10*window })
	natstest.StartWith(t, opts) // the same port and store: the producer reconnects
	waitUntil(t, "the producer back on NATS", nc.IsConnected)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Offline != 1 {
		t.Fatalf("stats %+v; want the push parked offline", st)
	}
}

// waitUntil polls cond until it holds, for at most a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
