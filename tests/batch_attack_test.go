package tests

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// batchOutcome counts a batch's results: acks by status, errors wrapping
// ErrUnacknowledged, other errors.
type batchOutcome struct {
	acks           map[string]int
	unacknowledged int
	failed         []error
}

func outcome(res []producer.Result) batchOutcome {
	o := batchOutcome{acks: map[string]int{}}
	for _, r := range res {
		switch {
		case errors.Is(r.Err, producer.ErrUnacknowledged):
			o.unacknowledged++
		case r.Err != nil:
			o.failed = append(o.failed, r.Err)
		default:
			o.acks[r.Ack.Status+" "+r.Ack.Reason]++
		}
	}
	return o
}

// A batch sent with a context that has no deadline is answered as any
// other: the push to a session online enqueued (and delivered), the one
// to nobody parked offline. (FlushWithContext refuses such a context.)
func TestPublishBatchWithoutDeadline(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "A"))
	alice := dial(t, n.tcp(), "alice", client.Options{})
	p := newProducer(t, natstest.Connect(t, s), "nodeadline")
	res := p.PublishBatch(context.Background(), []producer.Message{
		{Session: "alice", Priority: push.High, Payload: []byte("hi"), Options: []producer.Option{producer.WithID("a1")}},
		{Session: "nobody", Priority: push.High, Payload: []byte("parked"), Options: []producer.Option{producer.WithID("n1")}},
	})
	if r := res[0]; r.Err != nil || r.Ack.Status != protocol.StatusEnqueued {
		t.Errorf("push to alice: %+v; want enqueued", r)
	}
	if r := res[1]; r.Err != nil || r.Ack.Status != protocol.StatusDead || r.Ack.Reason != string(push.ReasonOffline) {
		t.Errorf("push to nobody: %+v; want dead offline", r)
	}
	if f := recv(t, alice); f.ID != "a1" {
		t.Errorf("alice got %s; want a1", f.ID)
	}
	if err := p.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}
	if letters := deadLetters(t, s); len(letters) != 1 || letters[0].Header.Get(protocol.HeaderID) != "n1" {
		t.Errorf("%d dead letters; want n1's", len(letters))
	}
}

// A batch of 10,000 pushes, sessions repeated, a few hundred to sessions
// no one holds: every push answered, each online one delivered once, each
// offline one dead-lettered once.
func TestPublishBatchLarge(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.QueueLen = 4096
	n := startEdge(t, cfg)
	got := &frames{got: map[string][]client.Frame{}, to: map[string]string{}}
	const sessions = 20
	for i := range sessions {
		session := fmt.Sprintf("s%d", i)
		dial(t, n.tcp(), session, client.Options{OnPush: got.on(session)})
	}
	p := newProducer(t, natstest.Connect(t, s), "big")
	const size = 10_000
	msgs := make([]producer.Message, size)
	offline := 0
	for i := range msgs {
		session := fmt.Sprintf("s%d", i%sessions)
		if i%33 == 0 {
			session, offline = fmt.Sprintf("gone%d", i%7), offline+1
		}
		msgs[i] = producer.Message{Session: session, Priority: push.Priority(i % 2), Payload: []byte(fmt.Sprint(i)),
			Options: []producer.Option{producer.WithID(fmt.Sprintf("m%d", i))}}
	}
	o := outcome(p.PublishBatch(timeout(t), msgs))
	if o.acks["enqueued "] != size-offline || o.acks["dead offline"] != offline || o.unacknowledged+len(o.failed) != 0 {
		t.Fatalf("outcome %+v; want %d enqueued, %d dead offline", o, size-offline, offline)
	}
	waitFor(t, "every online push delivered", func() bool { return got.count() == size-offline })
	if err := p.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}
	if letters := deadLetters(t, s); len(letters) != offline {
		t.Errorf("%d dead letters; want %d", len(letters), offline)
	}
}

// slowSession is a session on a node that writes a push every 50 ms, so
// a batch asking for Push-Ack written is answered over seconds; onPush is
// called with the count of pushes received so far.
func slowBatch(session string, n int) []producer.Message {
	msgs := make([]producer.Message, n)
	for i := range msgs {
		msgs[i] = producer.Message{Session: session, Priority: push.High, Payload: []byte("x"),
			Options: []producer.Option{producer.WithID(fmt.Sprintf("%s-%d", session, i)), producer.WithAck(protocol.AckWritten)}}
	}
	return msgs
}

// countingPushes is client.Options whose OnPush runs at once when the
// nth push arrives.
func countingPushes(nth int64, at func()) client.Options {
	var seen atomic.Int64
	var once sync.Once
	return client.Options{OnPush: func(client.Frame) {
		if seen.Add(1) == nth {
			once.Do(at)
		}
	}}
}

// A batch whose context is cancelled while its acknowledgements trickle
// in returns then: what was written says so, the rest is unacknowledged;
// the answers that come after change nothing, and the producer goes on.
func TestPublishBatchCancelled(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.Rate, cfg.Edge.Burst = 20, 1
	n := startEdge(t, cfg)
	ctx, cancel := context.WithCancel(timeout(t))
	defer cancel()
	dial(t, n.tcp(), "slow", countingPushes(3, cancel))
	p := newProducer(t, natstest.Connect(t, s), "cancelled")
	res := p.PublishBatch(ctx, slowBatch("slow", 40))
	o := outcome(res)
	if o.acks["written "] < 1 || o.acks["written "] > 10 || o.unacknowledged < 30 || len(o.failed) != 0 {
		t.Errorf("outcome %+v; want a few written, the rest unacknowledged", o)
	}
	// The rest is written meanwhile, its acks to a subscription gone.
	if r := p.PublishBatch(timeout(t), []producer.Message{{Session: "nobody", Priority: push.Low}}); r[0].Ack.Status != protocol.StatusDead {
		t.Errorf("a batch after: %+v; want dead offline", r[0])
	}
}

// The edge binary killed (SIGKILL) while a batch waits for its pushes to
// be written: the batch returns when its context ends, each push written
// or unacknowledged, none said not sent.
func TestPublishBatchEdgeKilled(t *testing.T) {
	s := natstest.Server(t)
	e := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--node", "K", "--ws-listen", "",
		"--tcp-listen", "127.0.0.1:0", "--jwt-secret-file", writeSecret(t), "--rate", "20", "--burst", "1")
	dial(t, "tcp://"+e.addr("tcp"), "doomed", countingPushes(3, func() { _ = e.cmd.Process.Kill() }))
	p := newProducer(t, natstest.Connect(t, s), "orphaned")
	ctx, cancel := context.WithTimeout(timeout(t), 5*time.Second)
	defer cancel()
	begin := time.Now()
	o := outcome(p.PublishBatch(ctx, slowBatch("doomed", 40)))
	if took := time.Since(begin); took > 30*time.Second {
		t.Errorf("PublishBatch took %v with a 5 s context", took)
	}
	if o.acks["written "]+o.unacknowledged != 40 || o.unacknowledged < 20 || len(o.failed) != 0 {
		t.Errorf("outcome %+v; want each written or unacknowledged, most unacknowledged", o)
	}
}

// The NATS connection closed for good while a batch waits (a context with
// no deadline): the batch returns, its pushes unacknowledged, not hung.
func TestPublishBatchConnectionClosed(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.Rate, cfg.Edge.Burst = 20, 1
	n := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	dial(t, n.tcp(), "slow", countingPushes(3, nc.Close))
	p := newProducer(t, nc, "closed")
	done := make(chan []producer.Result, 1)
	go func() { done <- p.PublishBatch(context.Background(), slowBatch("slow", 40)) }()
	select {
	case res := <-done:
		if o := outcome(res); o.acks["written "]+o.unacknowledged != 40 || len(o.failed) != 0 {
			t.Errorf("outcome %+v; want each written or unacknowledged", o)
		}
	case <-timeout(t).Done():
		t.Fatal("PublishBatch still waiting after its connection closed")
	}
}
