package stats

import (
	"sync"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	for _, c := range []struct {
		v      float64
		bucket int
	}{{0, 0}, {1, 0}, {1.5, 1}, {2, 1}, {3, 2}, {4, 2}, {4.01, 3}, {1e9, 3}} {
		h := NewHistogram(1, 2, 4)
		h.Observe(c.v)
		s := h.Snapshot()
		if s.Counts[c.bucket] != 1 || s.Count != 1 || s.Sum != c.v {
			t.Errorf("Observe(%v): counts %v, count %d, sum %v; want bucket %d, count 1, sum %[1]v", c.v, s.Counts, s.Count, s.Sum, c.bucket)
		}
	}
}

func TestHistogramCumulative(t *testing.T) {
	h := NewHistogram(1, 2, 4)
	for _, v := range []float64{0.5, 1, 2, 3, 5, 8} {
		h.Observe(v)
	}
	s := h.Snapshot()
	got := s.Cumulative()
	want := map[float64]uint64{1: 2, 2: 3, 4: 4}
	if len(got) != len(want) || s.Count != 6 || s.Sum != 19.5 {
		t.Fatalf("cumulative %v, count %d, sum %v; want %v, 6, 19.5", got, s.Count, s.Sum, want)
	}
	for b, n := range want {
		if got[b] != n {
			t.Errorf("bucket le=%v: %d; want %d", b, got[b], n)
		}
	}
}

// Counts made from many goroutines at once all land (and -race sees no
// race).
func TestConcurrentCounting(t *testing.T) {
	var c Counter
	var g Gauge
	h := NewHistogram(1, 2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Inc()
				c.Add(2)
				g.Inc()
				g.Dec()
				h.Observe(1.5)
			}
		})
	}
	wg.Wait()
	if s := h.Snapshot(); c.Load() != 24000 || g.Load() != 0 || s.Counts[1] != 8000 || s.Sum != 12000 {
		t.Fatalf("counter %d, gauge %d, histogram %+v; want 24000, 0, 8000 in le=2 summing to 12000", c.Load(), g.Load(), s)
	}
}

// Counting allocates nothing: it is on the push path.
func TestCountingDoesNotAllocate(t *testing.T) {
	var c Counter
	var g Gauge
	h := NewHistogram(1, 2, 4)
	if n := testing.AllocsPerRun(100, func() {
		c.Inc()
		c.Add(3)
		g.Inc()
		g.Dec()
		h.Observe(3)
	}); n != 0 {
		t.Fatalf("%v allocations per count; want 0", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	h := NewHistogram(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
	b.ReportAllocs()
	for b.Loop() {
		h.Observe(0.0007)
	}
}
