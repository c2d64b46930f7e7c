package producer_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// The producer client's fast path against a real nats-server, a plain
// subscriber taking (or dropping) the pushes so that there are responders.
// Beside it, the same pushes as plain publishes: "plain" the payload alone,
// "plain-headers" the same bytes as Publish sends (a reply subject in an
// inbox, the headers: an id, the send time, Push-Ack: none), built once:
// what the fast path adds is the difference.
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
		defer reportCPU(b)()
		i := 0
		for b.Loop() {
			if err := p.Publish(sessions[i%len(sessions)], push.High, payload); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("plain-headers", func(b *testing.B) {
		nc := connect(b)
		h := nats.Header{
			protocol.HeaderID:     []string{nuid.Next()},
			protocol.HeaderSentAt: []string{push.FormatTime(time.Now())},
			protocol.HeaderAck:    []string{"none"},
		}
		reply := nc.NewInbox() + ".1a2b3c" // no subscriber: nobody answers
		b.ReportAllocs()
		defer reportCPU(b)()
		i := 0
		for b.Loop() {
			if err := nc.PublishMsg(&nats.Msg{Subject: "push." + sessions[i%len(sessions)] + ".high", Reply: reply, Header: h, Data: payload}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("plain", func(b *testing.B) {
		nc := connect(b)
		b.ReportAllocs()
		defer reportCPU(b)()
		i := 0
		for b.Loop() {
			if err := nc.Publish("push."+sessions[i%len(sessions)]+".high", payload); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// reportCPU, deferred, reports the CPU time the benchmark's process spent
// (user and system, every thread: the publisher, nats.go's flusher and
// reader, the producer's own goroutines; the server and the subscriber are
// another process) per op, as cpu-ns/op: on a shared machine ns/op is
// wall time, which other processes' load stretches.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		if n := b.N; n > 0 {
			b.ReportMetric(float64(processCPU(b)-start)/float64(n), "cpu-ns/op")
		}
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
