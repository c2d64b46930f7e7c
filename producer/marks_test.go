package producer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Publish forgets a push as soon as NATS can no longer say nobody holds
// its session, a round trip after it, not when its status window ends:
// with an hour's window, Stop ends as soon as the producer's marks came
// back, and every push to an offline session among many to online ones
// is a dead letter, none of the others.
func TestPublishForgetsPushesARoundTripAfter(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(t.Context(), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	holder := natstest.Connect(t, s) // holds sessions on0…on9, as an edge would
	for i := range 10 {
		if _, err := holder.Subscribe(fmt.Sprintf("push.on%d.high", i), func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
	}
	nc := natstest.Connect(t, s)
	if err := holder.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(nc, producer.Options{Name: "marks", StatusWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	offline := 0
	for i := range 5000 {
		session := fmt.Sprintf("on%d", i%10)
		if i%500 == 7 {
			session, offline = fmt.Sprintf("off%d", i), offline+1
		}
		if err := p.Publish(session, push.High, []byte(session), producer.WithID(fmt.Sprintf("id%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Stop waits for the pushes tracked: an hour, were it not for the marks.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop with an hour's status window: %v", err)
	}
	if st := p.Stats(); st.Published != 5000 || st.Offline != uint64(offline) || st.Untracked != 0 {
		t.Fatalf("stats %+v; want 5000 published, %d offline, none untracked", st, offline)
	}
	st, err := js.Stream(t.Context(), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil || info.State.Msgs != uint64(offline) {
		t.Fatalf("%s holds %d letters (%v); want %d", protocol.DeadLetterStream, info.State.Msgs, err, offline)
	}
}

// On a connection without echo the marks never come back: pushes are
// forgotten when their status window ends, and an offline one is still
// dead-lettered.
func TestPublishWithoutEchoWaitsForTheWindow(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(t.Context(), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	holder := natstest.Connect(t, s)
	if _, err := holder.Subscribe("push.somebody.low", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := holder.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s, nats.NoEcho())
	p, err := producer.New(nc, producer.Options{Name: "noecho", StatusWindow: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, session := range []string{"nobody", "somebody"} {
		if err := p.Publish(session, push.Low, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Offline != 1 || st.Published != 2 {
		t.Fatalf("stats %+v; want 2 published, the push to nobody offline", st)
	}
}
