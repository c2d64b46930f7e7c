package producer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/push"
)

// The producer client's fast path against a real nats-server, a plain
// subscriber taking (or dropping) the pushes so that there are responders.
// Beside it, the same messages as plain publishes: what the fast path adds.
// The server and the subscriber are a process of their own (benchNATS), so
// that allocs/op and the profiles are the publisher's alone.
func BenchmarkPublish(b *testing.B) {
	url := benchNATS(b)
	connect := func(b *testing.B) *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	payload := make([]byte, 128)
	sessions := make([]string, 1000)
	for i := range sessions {
		sessions[i] = fmt.Sprintf("b%d", i)
	}
	b.Run("producer", func(b *testing.B) {
		nc := connect(b)
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
		nc := connect(b)
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
