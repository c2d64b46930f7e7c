package tests

import (
	"context"
	byteorder "encoding/binary"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// BenchmarkEndToEnd: a producer publishes 128-byte pushes with nats.go to
// 1,000 sessions held by one in-process edge node on a real nats-server;
// the clients, in the same process, read them over loopback TCP. Reported:
// delivered pushes per second and the latency from publish to the
// client's read (p50, p99). Unpaced is as fast as the producer can
// publish; paced spreads 20,000 pushes a second evenly.
//
//	go test -run '^$' -bench EndToEnd -benchtime 200000x ./tests/
func BenchmarkEndToEnd(b *testing.B) {
	const sessions = 1000
	s := natstest.Server(b)
	cfg := edgeConfig(b, s, "bench")
	cfg.Edge.QueueLen = 4096
	n := startEdge(b, cfg)
	lat := &latencies{}
	for i := range sessions {
		dial(b, n.tcp(), fmt.Sprintf("b%d", i), client.Options{ReadBufferSize: 16 << 10, OnPush: lat.record})
	}
	nc := natstest.Connect(b, s)
	for _, rate := range []int{0, 20_000} {
		name := "unpaced"
		if rate > 0 {
			name = fmt.Sprintf("paced-%d/s", rate)
		}
		b.Run(name, func(b *testing.B) {
			lat.reset(b.N)
			payload := make([]byte, 128)
			interval := time.Duration(0)
			if rate > 0 {
				interval = time.Second / time.Duration(rate)
			}
			begin := time.Now()
			b.ResetTimer()
			for i := range b.N {
				if interval > 0 {
					if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d)
					}
				}
				byteorder.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				m := &nats.Msg{Subject: fmt.Sprintf("push.b%d.high", i%sessions), Data: payload}
				if err := nc.PublishMsg(m); err != nil {
					b.Fatal(err)
				}
			}
			lat.wait(b, func() string { return deliveryReport(b, s, n) })
			elapsed := time.Since(begin)
			b.StopTimer()
			p50, p99 := lat.percentiles()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pushes/s")
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		})
	}
}

// latencies collects publish-to-read times from the payload's first 8
// bytes.
type latencies struct {
	mu   sync.Mutex
	all  []time.Duration
	want int
	done chan struct{}
}

func (l *latencies) reset(n int) {
	l.mu.Lock()
	l.all, l.want, l.done = make([]time.Duration, 0, n), n, make(chan struct{})
	l.mu.Unlock()
}

func (l *latencies) record(f client.Frame) {
	d := time.Since(time.Unix(0, int64(byteorder.BigEndian.Uint64(f.Payload))))
	l.mu.Lock()
	l.all = append(l.all, d)
	if len(l.all) == l.want {
		close(l.done)
	}
	l.mu.Unlock()
}

// wait waits for every push to arrive. If none arrives for 10 s it gives
// up with report(), saying where the rest went.
func (l *latencies) wait(b *testing.B, report func() string) {
	l.mu.Lock()
	done := l.done
	l.mu.Unlock()
	last := -1
	for {
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
		}
		l.mu.Lock()
		got := len(l.all)
		l.mu.Unlock()
		if got == last {
			b.Fatalf("%d of %d pushes arrived, then none for 10 s; %s", got, l.want, report())
		}
		last = got
	}
}

// deliveryReport says what the node and the NATS server counted.
func deliveryReport(b *testing.B, s *server.Server, n *edgeNode) string {
	_, mfs := scrape(b, n)
	dead := map[string]float64{}
	for _, m := range mfs["pushfabric_dead_letters_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v > 0 {
			dead[m.GetLabel()[0].GetValue()] = v
		}
	}
	return fmt.Sprintf("node: high pushes received %v, written %v, dead letters %v, NATS slow-consumer events %v; server: %d slow consumers",
		value(b, mfs, "pushfabric_pushes_received_total", "priority=high"), value(b, mfs, "pushfabric_pushes_written_total", "priority=high"), dead,
		value(b, mfs, "pushfabric_nats_slow_consumer_events_total"), s.NumSlowConsumers())
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.all)
	return l.all[len(l.all)/2], l.all[len(l.all)*99/100]
}

// BenchmarkRequest: one client asks a backend (backend, on its own
// NATS connection) through an in-process edge node, one request at a
// time. "one" is a single 128-byte reply: ns/op is the round trip, client
// to backend and back; "nats-request" is the same round trip as a plain
// NATS request to a plain responder on the same server, the baseline.
// "stream-100" is 100 replies of 128 bytes each, which the client reads as
// they come; replies/s is reported.
//
//	go test -run '^$' -bench Request -count 6 ./tests/
func BenchmarkRequest(b *testing.B) {
	s := natstest.Server(b)
	n := startEdge(b, edgeConfig(b, s, "bench"))
	nc := natstest.Connect(b, s)
	payload := make([]byte, 128)
	for _, replies := range []int{1, 100} {
		method := fmt.Sprintf("r%d", replies)
		svc, err := backend.New(nc, method, func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
			return func(yield func(backend.Reply, error) bool) {
				for range replies {
					if !yield(backend.Reply{Payload: payload}, nil) {
						return
					}
				}
			}
		}, backend.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = svc.Stop(context.Background()) })
	}
	// The baseline: a plain NATS request to a plain responder, same server.
	sub, err := nc.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(payload) })
	if err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	asker := natstest.Connect(b, s)
	b.Run("nats-request", func(b *testing.B) {
		for range b.N {
			if _, err := asker.Request("bench.echo", nil, testTimeout); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := dial(b, n.tcp(), "bench", client.Options{})
	for _, replies := range []int{1, 100} {
		name := "one"
		if replies > 1 {
			name = fmt.Sprintf("stream-%d", replies)
		}
		b.Run(name, func(b *testing.B) {
			ctx := timeout(b)
			begin := time.Now()
			for range b.N {
				got := 0
				for _, err := range c.Request(ctx, fmt.Sprintf("r%d", replies), nil) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != replies {
					b.Fatalf("%d replies, want %d", got, replies)
				}
			}
			if replies > 1 {
				b.ReportMetric(float64(b.N*replies)/time.Since(begin).Seconds(), "replies/s")
			}
		})
	}
}
