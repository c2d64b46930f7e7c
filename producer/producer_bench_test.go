package producer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The producer client's fast path against a real nats-server, a plain
// subscriber taking (or dropping) the pushes so that there are responders.
// Beside it, the same messages as plain publishes: what the fast path adds.
func BenchmarkPublish(b *testing.B) {
	s := natstest.Server(b)
	sub, err := natstest.Connect(b, s).Subscribe("push.>", func(*nats.Msg) {})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	payload := make([]byte, 128)
	sessions := make([]string, 1000)
	for i := range sessions {
		sessions[i] = fmt.Sprintf("b%d", i)
	}
	b.Run("producer", func(b *testing.B) {
		nc := natstest.Connect(b, s)
		p, err := producer.New(nc, producer.Options{MaxTracked: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		defer p.Stop(context.Background())
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := p.Publish(sessions[i%len(sessions)], push.High, payload); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("plain", func(b *testing.B) {
		nc := natstest.Connect(b, s)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := nc.Publish("push."+sessions[i%len(sessions)]+".high", payload); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
