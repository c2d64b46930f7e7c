package producer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// startProducer is a started producer on a server of its own with the
// dead-letter stream, and a JetStream context to read the stream with.
func startProducer(t *testing.T, opts producer.Options) (*producer.Producer, jetstream.JetStream) {
	t.Helper()
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(t.Context(), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(natstest.Connect(t, s), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p, js
}

// letterHeaders reads the headers of the dead letter on subject.
func letterHeaders(t *testing.T, js jetstream.JetStream, subject string) nats.Header {
	t.Helper()
	st, err := js.Stream(t.Context(), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatalf("dead letter on %s: %v", subject, err)
	}
	return m.Header
}

// A push refused after its options ran leaves nothing of them in the
// message Publish reuses: neither its headers go out with the next push,
// nor its Push-Ack refuses the next group push.
func TestRefusedPushLeavesNothingBehind(t *testing.T) {
	p, js := startProducer(t, producer.Options{Name: "scratch"})
	// Refused once every option ran: a group takes no Push-Ack written.
	if err := p.PublishGroup("g", push.High, nil, producer.WithContentType("secret/type"), producer.WithAck(protocol.AckWritten)); err == nil {
		t.Fatal("group push with Push-Ack written taken")
	}
	if err := p.Publish("nobody", push.High, []byte("plain"), producer.WithID("plain")); err != nil {
		t.Fatal(err)
	}
	// Refused by its last option, after another set a header and Push-Ack.
	if err := p.Publish("nobody", push.Low, nil, producer.WithHeader("X-Secret", "s3"), producer.WithAck(protocol.AckWritten),
		producer.WithID("")); err == nil {
		t.Fatal("push with an empty id taken")
	}
	if err := p.PublishGroup("nogroup", push.Low, []byte("group"), producer.WithID("group")); err != nil {
		t.Fatalf("group push after a refused one: %v", err)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[string]string{"dlq.push.offline.nobody.high": "plain", "dlq.push.offline.group.nogroup.low": "group"} {
		h := letterHeaders(t, js, subject)
		if h.Get(protocol.HeaderID) != want || h.Get(protocol.HeaderContentType) != "" || h.Get("X-Secret") != "" ||
			h.Get(protocol.HeaderAck) != protocol.AckNone {
			t.Errorf("dead letter of %s: headers %v; want its own, none of the refused pushes'", want, h)
		}
	}
}

// A caller's own Option that deletes the push id, or panics, leaves the
// producer working: the id is minted, the panic is the caller's and the
// next push goes out.
func TestOddOptionsLeaveTheProducerWorking(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(t.Context(), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(natstest.Connect(t, s), producer.Options{Name: "odd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// No Stop at cleanup: with the producer's lock held it would block.
	noID := func(m *nats.Msg) error { m.Header.Del(protocol.HeaderID); return nil }
	if err := p.Publish("nobody", push.High, []byte("x"), noID); err != nil {
		t.Fatalf("push whose option deleted its id: %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = p.Publish("nobody", push.High, nil, func(*nats.Msg) error { panic("the caller's bug") })
	}()
	done := make(chan error, 1)
	go func() { done <- p.Publish("nobody", push.Low, []byte("after"), producer.WithID("after")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Publish after an option panicked: still blocked after 30s (the producer's lock held)")
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := letterHeaders(t, js, "dlq.push.offline.nobody.high"); len(h.Get(protocol.HeaderID)) == 0 {
		t.Errorf("dead letter of the push without an id: %v; want an id minted", h)
	}
	if st := p.Stats(); st.Offline != 2 {
		t.Errorf("stats %+v; want 2 offline", st)
	}
}

// A burst far beyond MaxTracked: the pushes past the bound are sent
// untracked and counted, and every tracked push to an offline session is
// a dead letter: published = offline + untracked, to the push.
func TestBurstBeyondMaxTracked(t *testing.T) {
	p, js := startProducer(t, producer.Options{Name: "burst", MaxTracked: 64})
	const n = 20_000
	for i := range n {
		if err := p.Publish(fmt.Sprintf("off%d", i%100), push.Priority(i%2), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Published != n || st.Untracked == 0 || st.Offline+st.Untracked != n {
		t.Fatalf("stats %+v; want %d published, some untracked, the rest offline", st, n)
	}
	stream, err := js.Stream(t.Context(), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil || info.State.Msgs != st.Offline {
		t.Fatalf("%s holds %d letters (%v); want %d", protocol.DeadLetterStream, info.State.Msgs, err, st.Offline)
	}
	t.Logf("%+v", st)
}
