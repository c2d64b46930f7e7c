package bus

import (
	"github.com/pushfabric/pushfabric/internal/stats"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Metrics count what a node's Sink, Dispatcher and Forwarder do, with the
// standard library only: each count is an atomic add, never an allocation.
// One set is shared by the parts of a node; read it with [Metrics.Stats]
// (hand-overs are in DispatcherStats, the connection's troubles in
// ConnStats). The composition root exports them to Prometheus when scraped.
type Metrics struct {
	deadLetters map[push.Reason]*stats.Counter // by reason; the maps are never changed once made
	acks        map[string]*stats.Counter      // by status
	latency     *stats.Histogram
	requests    map[string]*stats.Counter // by outcome
	lateReplies stats.Counter
}

// NewMetrics makes a set of the bus's counts, every one at 0.
func NewMetrics() *Metrics {
	return &Metrics{
		deadLetters: stats.Counters(push.Reasons...),
		acks:        stats.Counters(protocol.StatusEnqueued, protocol.StatusWritten, protocol.StatusReceived, protocol.StatusDead),
		latency:     stats.NewHistogram(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
		requests:    stats.Counters(Outcomes...),
	}
}

// MetricsStats are what a node's bus counted since its Metrics were made.
// Every map holds every key its doc names, from 0.
type MetricsStats struct {
	DeadLetters map[push.Reason]uint64 // pushes dead-lettered by the node, by every push.Reasons
	// Acks counts the acknowledgements sent to producers, by status
	// (protocol.StatusEnqueued, StatusWritten, StatusReceived, StatusDead).
	Acks        map[string]uint64
	Requests    map[string]uint64 // client requests forwarded to backends, by how they ended (Outcomes)
	LateReplies uint64            // backend replies that came after their request had ended
	// Latency counts, in seconds, each push's time from the producer's send
	// (Push-Sent-At) to its write to the client socket (buckets ending at
	// 100 µs … 10 s).
	Latency stats.HistogramSnapshot
}

// Stats reads the counts. It never blocks; counts made meanwhile may be in
// one field and not yet in another.
func (m *Metrics) Stats() MetricsStats {
	return MetricsStats{DeadLetters: stats.Loads(m.deadLetters), Acks: stats.Loads(m.acks), Requests: stats.Loads(m.requests),
		LateReplies: m.lateReplies.Load(), Latency: m.latency.Snapshot()}
}

func (m *Metrics) deadLetter(reason push.Reason) {
	if c := m.deadLetters[reason]; c != nil {
		c.Inc()
	}
}

func (m *Metrics) ack(status string) { m.acks[status].Inc() }

func (m *Metrics) request(outcome string) { m.requests[outcome].Inc() }

func (m *Metrics) lateReply() { m.lateReplies.Inc() }
