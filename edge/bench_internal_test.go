package edge

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/push"
)

// discardConn is a connection whose writes vanish and whose reads wait for
// Close: the cheapest possible client, to measure the actor alone.
type discardConn struct {
	closed  chan struct{}
	once    sync.Once
	bytes   atomic.Int64
	target  atomic.Int64  // when bytes reaches it, reached is closed
	reached chan struct{} // closed by Write
}

func newDiscardConn() *discardConn {
	d := &discardConn{closed: make(chan struct{}), reached: make(chan struct{})}
	d.target.Store(1) // the welcome frame
	return d
}

func (d *discardConn) Read([]byte) (int, error) { <-d.closed; return 0, net.ErrClosed }
func (d *discardConn) Write(p []byte) (int, error) {
	t := d.target.Load()
	if n := d.bytes.Add(int64(len(p))); n >= t && n-int64(len(p)) < t {
		close(d.reached)
	}
	return len(p), nil
}

// expect returns a channel closed once n more bytes than now are written.
// Call it with no write in progress.
func (d *discardConn) expect(n int64) <-chan struct{} {
	d.reached = make(chan struct{})
	d.target.Store(d.bytes.Load() + n)
	return d.reached
}
func (d *discardConn) Close() error                     { d.once.Do(func() { close(d.closed) }); return nil }
func (d *discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (d *discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (d *discardConn) SetDeadline(time.Time) error      { return nil }
func (d *discardConn) SetReadDeadline(time.Time) error  { return nil }
func (d *discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkPushDiscard: pushes from 1 or 4 producers through one
// connection's actor (queue, writer, fairness, coalescing, encoding) to a
// connection that discards the bytes. Allocations are per push.
func BenchmarkPushDiscard(b *testing.B) {
	for _, producers := range []int{1, 4} {
		b.Run("producers="+strconv.Itoa(producers), func(b *testing.B) {
			srv, err := NewServer(Options{Config: DefaultConfig(), Auth: DevAuth{}})
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			dc := newDiscardConn()
			c := srv.newConn(dc, dc.RemoteAddr(), tcpFraming{}, "bench")
			srv.admit(c)
			<-dc.reached // the welcome frame
			payload := make([]byte, 128)
			f := Frame{ID: "0123456789abcdefghij", ContentType: "application/json", Payload: payload}
			per := (b.N + producers - 1) / producers
			written := dc.expect(int64(producers*per) * int64(f.Len()+4))
			b.SetBytes(128)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range producers {
				prio := push.Priority(p % 2)
				wg.Go(func() {
					for range per {
						for c.TryPush(prio, Envelope{Frame: f}) != nil { // queue full: let the writer catch up
						}
					}
				})
			}
			wg.Wait()
			<-written
			b.StopTimer()
			dc.Close()
			<-c.Done()
			srv.Shutdown(b.Context())
		})
	}
}
