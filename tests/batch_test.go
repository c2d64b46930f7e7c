package tests

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// PublishBatch gives each push of a batch the answer Push would have:
// enqueued or written by the node holding its session, dead offline (and
// dead-lettered) when nobody holds it, an error for an invalid one, which
// is not sent; an unanswerable batch ends with ctx, ErrUnacknowledged.
func TestPublishBatch(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "batcher")
	var clients []*client.Conn
	var msgs []producer.Message
	for i := range 50 {
		session := fmt.Sprintf("b%d", i)
		clients = append(clients, dial(t, n.tcp(), session, client.Options{}))
		msgs = append(msgs, producer.Message{Session: session, Priority: push.High, Payload: []byte(session),
			Options: []producer.Option{producer.WithID("id-" + session)}})
	}
	msgs[7].Options = append(msgs[7].Options, producer.WithAck(protocol.AckWritten))
	msgs = append(msgs,
		producer.Message{Session: "nobody", Priority: push.Low, Payload: []byte("parked"), Options: []producer.Option{producer.WithID("parked")}},
		producer.Message{Session: "bad session!", Priority: push.Low},
		producer.Message{Session: "b1", Priority: push.Priority(9)})
	res := p.PublishBatch(timeout(t), msgs)
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d pushes", len(res), len(msgs))
	}
	for i := range 50 {
		want := protocol.AckEnqueued
		if i == 7 {
			want = protocol.AckWritten
		}
		if r := res[i]; r.Err != nil || r.Ack.Status != want || r.Ack.ID != fmt.Sprintf("id-b%d", i) || r.Ack.Node != "n1" {
			t.Errorf("push %d: %+v; want %s by n1", i, r, want)
		}
	}
	if r := res[50]; r.Err != nil || r.Ack.Status != protocol.StatusDead || r.Ack.Reason != "offline" || r.Ack.Node != "batcher" {
		t.Errorf("push to nobody: %+v; want dead offline by batcher", r)
	}
	for _, i := range []int{51, 52} {
		if res[i].Err == nil || res[i].Ack.Status != "" {
			t.Errorf("invalid push %d: %+v; want an error and no ack", i, res[i])
		}
	}
	for i, c := range clients {
		if f := recv(t, c); f.ID != fmt.Sprintf("id-b%d", i) {
			t.Fatalf("client %d got %s", i, f.ID)
		}
	}
	waitFor(t, "the offline push's dead letter", func() bool {
		for _, dl := range deadLetters(t, s) {
			if dl.Header.Get(protocol.HeaderID) == "parked" && dl.Header.Get(protocol.HeaderReason) == "offline" {
				return true
			}
		}
		return false
	})

	// A batch whose ctx ends before the answers come: each push sent is
	// unacknowledged (it may have been delivered; send it again, same id).
	ctx, cancel := context.WithCancel(timeout(t))
	cancel()
	res = p.PublishBatch(ctx, msgs[:1])
	if !errors.Is(res[0].Err, producer.ErrUnacknowledged) {
		t.Fatalf("batch with its ctx ended: %+v; want ErrUnacknowledged", res[0])
	}
}
