// Package stats holds the counters the libraries keep for their Stats
// methods: a Counter, a Gauge and a fixed-bucket Histogram, each updated
// with atomic operations only, never allocating and never blocking, so
// that the push path can count as it goes. It exists so that edge and bus
// count without Prometheus: the composition root reads their Stats when
// scraped and exports them. It imports only the standard library.
package stats

import (
	"math"
	"sync/atomic"
)

// Counter is a count that only grows. The zero value is ready; it is safe
// for concurrent use.
type Counter struct {
	n atomic.Uint64
	_ [cacheLine - 8]byte
}

// cacheLine is what a Counter or a Gauge takes, so that two of them never
// share a cache line: the push path bumps them from every core, and each
// bump would otherwise take the line from the cores bumping its neighbours.
const cacheLine = 64

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds v, a whole, non-negative count (a float64, as the call sites
// that fed Prometheus counters pass it); a fraction is dropped.
func (c *Counter) Add(v float64) { c.n.Add(uint64(v)) }

// Load is the count so far.
func (c *Counter) Load() uint64 { return c.n.Load() }

// Gauge is a value that goes up and down. The zero value is ready; it is
// safe for concurrent use.
type Gauge struct {
	n atomic.Int64
	_ [cacheLine - 8]byte
}

// Inc adds one.
func (g *Gauge) Inc() { g.n.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.n.Add(-1) }

// Add adds v, which may be negative.
func (g *Gauge) Add(v int64) { g.n.Add(v) }

// Load is the value now.
func (g *Gauge) Load() int64 { return g.n.Load() }

// Histogram counts observations in fixed buckets and keeps their sum. It is
// safe for concurrent use; Observe is a few atomic operations.
type Histogram struct {
	bounds []float64       // the buckets' upper bounds, ascending; read-only
	counts []atomic.Uint64 // per bucket; the last is above every bound
	sum    atomic.Uint64   // the float64 bits of the sum
}

// NewHistogram makes a histogram whose buckets end at bounds (inclusive),
// which must be ascending, plus one above them all.
func NewHistogram(bounds ...float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe counts v in the first bucket whose bound is at least v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot reads the histogram. Observations made meanwhile may be in its
// counts and not yet in its sum, or the other way round.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Counts: make([]uint64, len(h.counts)),
		Sum: math.Float64frombits(h.sum.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	return s
}

// HistogramSnapshot is what a Histogram held when read.
type HistogramSnapshot struct {
	Bounds []float64 // the buckets' upper bounds, ascending; shared with the histogram, do not modify
	Counts []uint64  // observations per bucket, len(Bounds)+1: the last above every bound
	Count  uint64    // every observation: the sum of Counts
	Sum    float64   // the sum of the observed values
}

// Cumulative maps each bound to the observations at most that bound, as
// Prometheus exposes buckets (the count above every bound is Count).
func (s HistogramSnapshot) Cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(s.Bounds))
	var n uint64
	for i, b := range s.Bounds {
		n += s.Counts[i]
		out[b] = n
	}
	return out
}

// Counters makes a counter, at 0, for every key: a family of counts by
// label whose every value is present from the start.
func Counters[K comparable](keys ...K) map[K]*Counter {
	out := make(map[K]*Counter, len(keys))
	for _, k := range keys {
		out[k] = new(Counter)
	}
	return out
}

// Loads reads every counter of cs.
func Loads[K comparable](cs map[K]*Counter) map[K]uint64 {
	out := make(map[K]uint64, len(cs))
	for k, c := range cs {
		out[k] = c.Load()
	}
	return out
}
