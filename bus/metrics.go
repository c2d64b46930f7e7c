package bus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Metrics are the bus's Prometheus collectors (pushfabric_*), every label
// value present from the start.
type Metrics struct {
	deadLetters map[string]prometheus.Counter // by reason
	acks        map[string]prometheus.Counter // by status
	latency     prometheus.Histogram
	requests    map[string]prometheus.Counter // by outcome
	lateReplies prometheus.Counter
	handovers   map[string]prometheus.Counter // by outcome
}

// NewMetrics makes the bus's collectors for the connection c and registers
// them on reg.
func NewMetrics(reg prometheus.Registerer, c *Conn) (*Metrics, error) {
	deadLetters := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_dead_letters_total",
		Help: "Pushes dead-lettered by this node, by reason."}, []string{"reason"})
	acks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_acks_total",
		Help: "Acknowledgements sent to producers, by status."}, []string{"status"})
	m := &Metrics{
		deadLetters: map[string]prometheus.Counter{},
		acks:        map[string]prometheus.Counter{},
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pushfabric_delivery_latency_seconds",
			Help:    "Time from the producer's send (Push-Sent-At) to the push's write to the client socket.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}),
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_backend_requests_total",
		Help: "Client requests forwarded to backends over NATS, by how they ended."}, []string{"outcome"})
	m.requests = map[string]prometheus.Counter{}
	for _, o := range Outcomes {
		m.requests[o] = requests.WithLabelValues(o)
	}
	m.lateReplies = prometheus.NewCounter(prometheus.CounterOpts{Name: "pushfabric_backend_replies_discarded_total",
		Help: "Backend replies that arrived after their request had ended."})
	handovers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_handovers_total",
		Help: "Pushes this node handed to the node that took their session, by how it ended."}, []string{"outcome"})
	m.handovers = map[string]prometheus.Counter{}
	for _, o := range HandoverOutcomes {
		m.handovers[o] = handovers.WithLabelValues(o)
	}
	for _, r := range push.Reasons {
		m.deadLetters[string(r)] = deadLetters.WithLabelValues(string(r))
	}
	for _, s := range []string{protocol.StatusEnqueued, protocol.StatusWritten, protocol.StatusDead} {
		m.acks[s] = acks.WithLabelValues(s)
	}
	stat := func(name, help string, v func(ConnStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(c.Stats())) })
	}
	for _, col := range []prometheus.Collector{deadLetters, acks, m.latency, requests, m.lateReplies, handovers,
		stat("pushfabric_nats_reconnects_total", "Reconnections to NATS.", func(s ConnStats) uint64 { return s.Reconnects }),
		stat("pushfabric_nats_slow_consumer_events_total", "Times NATS dropped messages because this node read too slowly.",
			func(s ConnStats) uint64 { return s.SlowConsumers }),
		stat("pushfabric_nats_dropped_messages_total", "Messages NATS dropped because this node read too slowly, before it saw them: no dead letter records them; each session's are logged.",
			func(s ConnStats) uint64 { return s.DroppedMessages }),
		stat("pushfabric_nats_slow_consumer_disconnects_total", "Times the NATS server closed this node's connection because it read too slowly; what the server held for it was lost, uncounted.",
			func(s ConnStats) uint64 { return s.ServerSlowConsumers }),
		stat("pushfabric_nats_permission_errors_total", "Publishes or subscriptions the NATS server refused.",
			func(s ConnStats) uint64 { return s.PermissionErrors }),
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) deadLetter(reason push.Reason) {
	if c := m.deadLetters[string(reason)]; c != nil {
		c.Inc()
	}
}

func (m *Metrics) ack(status string) { m.acks[status].Inc() }

func (m *Metrics) request(outcome string) { m.requests[outcome].Inc() }

func (m *Metrics) lateReply() { m.lateReplies.Inc() }

func (m *Metrics) handover(outcome string) { m.handovers[outcome].Inc() }
