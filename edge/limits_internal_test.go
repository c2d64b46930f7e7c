package edge

import (
	"net"
	"testing"
	"time"
)

// A spray of source addresses keeps at most the bound of buckets (the
// spray is ConnectRate's to stop).
func TestConnectBucketsAreBounded(t *testing.T) {
	const bound = 1024
	l := newIPLimiters(0.1, bound)
	now := time.Now()
	for i := range 100_000 {
		a := &net.TCPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 1}
		l.allow(a, now)
		if l.len() > bound {
			t.Fatalf("%d buckets after %d addresses; want at most %d", l.len(), i+1, bound)
		}
	}
}

// Buckets that have filled again are the first to go.
func TestFullConnectBucketsGoFirst(t *testing.T) {
	l := newIPLimiters(1, 8)
	now := time.Now()
	for i := range 8 {
		l.allow(&net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(i)), Port: 1}, now)
	}
	later := now.Add(2 * time.Second) // every bucket full again
	l.allow(&net.TCPAddr{IP: net.IPv4(10, 0, 1, 1), Port: 1}, later)
	if l.len() != 1 {
		t.Fatalf("%d buckets; want only the new address's", l.len())
	}
}

// What the client limits cost each frame the reader handles.
func BenchmarkCountFrame(b *testing.B) {
	s := &Server{cfg: DefaultConfig(), epoch: time.Now(), metrics: NewMetrics()}
	c := &Conn{srv: s, lastRead: s.epoch}
	c.limits.fill(&s.cfg, 0)
	b.ReportAllocs()
	for b.Loop() {
		c.lastRead = c.lastRead.Add(10 * time.Millisecond) // 100 frames a second, within the limits
		c.in.read += 64
		if err := c.countFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
