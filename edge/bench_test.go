package edge_test

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/push"
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

// drain reads nc until the server closes it, then closes it.
func (bc *byteCounter) drain(nc net.Conn) {
	bc.wg.Go(func() {
		_, _ = io.CopyBuffer(bc, nc, make([]byte, 64<<10))
		_ = nc.Close()
	})
}

// benchSessions connects n raw TCP sessions whose bytes go to bc.
func benchSessions(b *testing.B, nd *node, n int, bc *byteCounter) []*edge.Conn {
	handles := make([]*edge.Conn, n)
	for i := range n {
		raw := rawTCP(b, nd, fmt.Sprintf("s%d", i))
		_ = raw.nc.SetReadDeadline(time.Time{}) // the drain reads for as long as the benchmark runs
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
			f := newFanOut(b, 1, flushers)
			b.Run(fmt.Sprintf("flushers=%d/producers=%d", flushers, producers), func(b *testing.B) {
				f.run(b, producers, 0)
			})
			f.stop(b)
		}
	}
}

// BenchmarkFanOut: one producer pushing 128-byte pushes round-robin over
// many sessions on loopback sockets, whose clients drain in the same
// process; as fast as it can (hot sessions: pushes queue up and coalesce),
// and paced at 50,000 pushes a second (most writes carry one push).
// cpu-ns/push is the whole process's CPU time (server, producer and
// clients) per push. This is the measurement behind Config.Flushers.
func BenchmarkFanOut(b *testing.B) {
	for _, sessions := range []int{1000, 5000} {
		for _, flushers := range []int{0, 1, 2} {
			f := newFanOut(b, sessions, flushers)
			for _, rate := range []int{0, 50_000} {
				pace := "unpaced"
				if rate > 0 {
					pace = fmt.Sprintf("%d/s", rate)
				}
				b.Run(fmt.Sprintf("sessions=%d/flushers=%d/%s", sessions, flushers, pace), func(b *testing.B) {
					f.run(b, 1, rate)
				})
			}
			f.stop(b)
		}
	}
}

// fanOut is a node with connected sessions whose clients count bytes.
type fanOut struct {
	nd      *node
	handles []*edge.Conn
	bc      *byteCounter
}

func newFanOut(b *testing.B, sessions, flushers int) *fanOut {
	cfg := edge.DefaultConfig()
	cfg.Flushers = flushers
	f := &fanOut{nd: startNode(b, cfg, edge.Options{}), bc: &byteCounter{}}
	f.handles = benchSessions(b, f.nd, sessions, f.bc)
	return f
}

// stop ends the node and waits for its clients to close.
func (f *fanOut) stop(b *testing.B) {
	f.nd.stop(b)
	f.bc.wg.Wait()
}

// run pushes b.N pushes from the producers, round-robin over the sessions,
// at rate pushes per second (0: as fast as possible), and waits until the
// clients have read them all.
func (f *fanOut) run(b *testing.B, producers, rate int) {
	fr := edge.Frame{ID: "0123456789abcdefghij", ContentType: "application/json", Payload: make([]byte, 128)}
	per := (b.N + producers - 1) / producers
	done := f.bc.expect(int64(producers*per) * int64(fr.Len()+4))
	b.SetBytes(int64(len(fr.Payload)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			pace := newPacer(rate / producers)
			for i := range per {
				pace.wait(i)
				h := f.handles[(i*producers+p)%len(f.handles)]
				for h.TryPush(push.High, edge.Envelope{Frame: fr}) != nil {
					runtime.Gosched() // queue full: let the writer catch up
				}
			}
		})
	}
	wg.Wait()
	<-done
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(producers*per), "cpu-ns/push")
}

// pacer spaces pushes evenly at a rate, in steps of a millisecond.
type pacer struct {
	perMs int
	start time.Time
}

func newPacer(rate int) *pacer { return &pacer{perMs: rate / 1000, start: time.Now()} }

func (p *pacer) wait(i int) {
	if p.perMs == 0 || i%p.perMs != 0 {
		return
	}
	if d := time.Until(p.start.Add(time.Duration(i/p.perMs) * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
