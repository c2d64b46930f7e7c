package edge_test

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
)

// byteCounter is the client side of a benchmark: it drains sockets and
// closes reached once the expected number of bytes arrived.
type byteCounter struct {
	n       atomic.Int64
	target  atomic.Int64
	reached chan struct{}
	wg      sync.WaitGroup
}

func (bc *byteCounter) expect(n int64) <-chan struct{} {
	bc.reached = make(chan struct{})
	bc.target.Store(bc.n.Load() + n)
	return bc.reached
}

func (bc *byteCounter) Write(p []byte) (int, error) {
	t := bc.target.Load()
	if n := bc.n.Add(int64(len(p))); n >= t && n-int64(len(p)) < t {
		close(bc.reached)
	}
	return len(p), nil
}

func (bc *byteCounter) drain(nc net.Conn) {
	bc.wg.Go(func() { _, _ = io.CopyBuffer(bc, nc, make([]byte, 64<<10)) })
}

// benchSessions connects n raw TCP sessions whose bytes go to bc.
func benchSessions(b *testing.B, nd *node, n int, bc *byteCounter) []*edge.Conn {
	handles := make([]*edge.Conn, n)
	for i := range n {
		raw := rawTCP(b, nd, fmt.Sprintf("s%d", i))
		_ = raw.nc.SetDeadline(timeZero)
		handles[i] = nd.handle(b, fmt.Sprintf("s%d", i))
		bc.drain(raw.nc)
	}
	return handles
}

// BenchmarkPushLoopback: pushes of 128 bytes from 1 or 4 producers to one
// session over a real loopback socket, with the shared flusher or with a
// writer goroutine per busy connection.
func BenchmarkPushLoopback(b *testing.B) {
	for _, flushers := range []int{0, 1} {
		for _, producers := range []int{1, 4} {
			b.Run(fmt.Sprintf("flushers=%d/producers=%d", flushers, producers), func(b *testing.B) {
				benchPush(b, 1, flushers, producers)
			})
		}
	}
}

// BenchmarkFanOut: one producer pushing 128-byte pushes round-robin over
// 1,000 sessions on loopback sockets, whose clients drain in the same
// process. This is the measurement behind the choice of Config.Flushers.
func BenchmarkFanOut(b *testing.B) {
	for _, flushers := range []int{0, 1, 2} {
		b.Run(fmt.Sprintf("sessions=1000/flushers=%d", flushers), func(b *testing.B) {
			benchPush(b, 1000, flushers, 1)
		})
	}
}

func benchPush(b *testing.B, sessions, flushers, producers int) {
	cfg := edge.DefaultConfig()
	cfg.Flushers = flushers
	nd := startNode(b, cfg, edge.Options{})
	bc := &byteCounter{}
	handles := benchSessions(b, nd, sessions, bc)
	f := edge.Frame{ID: "0123456789abcdefghij", ContentType: "application/json", Payload: make([]byte, 128)}
	per := (b.N + producers - 1) / producers
	done := bc.expect(int64(producers*per) * int64(f.Len()+4))
	b.SetBytes(int64(len(f.Payload)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				h := handles[(i*producers+p)%len(handles)]
				for h.TryPush(edge.High, f) != nil {
					runtime.Gosched() // queue full: let the writer catch up
				}
			}
		})
	}
	wg.Wait()
	<-done
	b.StopTimer()
	nd.stop(b)
	bc.wg.Wait()
}
