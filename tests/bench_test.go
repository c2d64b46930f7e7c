package tests

import (
	byteorder "encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
			lat.wait()
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

func (l *latencies) wait() {
	l.mu.Lock()
	done := l.done
	l.mu.Unlock()
	<-done
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.all)
	return l.all[len(l.all)/2], l.all[len(l.all)*99/100]
}
