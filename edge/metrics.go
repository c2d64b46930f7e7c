package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Metrics are the edge's Prometheus collectors, all named pushfabric_*,
// with every label value present from the start. Create them with
// NewMetrics on the registry the node exposes; a Server given none keeps a
// private set nobody scrapes.
type Metrics struct {
	received, written [2]prometheus.Counter // by priority
	bytesWritten      prometheus.Counter
	batchSize         prometheus.Histogram
	queueWait         prometheus.Histogram
	sessions          prometheus.Gauge
	connects          prometheus.Counter
	rejections        map[string]prometheus.Counter
	disconnects       map[wire.CloseReason]prometheus.Counter
	takeovers         prometheus.Counter
	streams           map[string]prometheus.Counter
	panics            map[string]prometheus.Counter // by goroutine
	lost              map[string]prometheus.Counter // by reason
}

// Rejection reasons: why a client never got a session.
const (
	RejectAuth      = "auth"      // authentication failed
	RejectHandshake = "handshake" // the WebSocket upgrade or TCP hello failed or timed out
	RejectShutdown  = "shutdown"  // the node was stopping
	RejectRefused   = "refused"   // the Admit or connect hook refused it
	RejectOrigin    = "origin"    // a browser page from an origin not allowed (WebSocket)
)

// Why a connection's pushes were lost: neither written nor dead-lettered.
const (
	LostSinkPanic = "sink_panic" // the dead-letter sink panicked on the connection
)

// Outcomes of a request's response stream.
const (
	StreamCompleted = "completed" // ended normally
	StreamFailed    = "failed"    // ended with an error frame
	StreamCanceled  = "canceled"  // canceled by the client
	StreamAbandoned = "abandoned" // the connection closed first
)

// NewMetrics makes the edge's collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "pushfabric_bytes_written_total",
			Help: "Bytes written to client sockets, frames and transport framing included."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pushfabric_write_batch_pushes",
			Help:    "Pushes carried by one write to a client socket.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pushfabric_queue_wait_seconds",
			Help:    "Time from a push entering its session's queue to its write.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pushfabric_sessions",
			Help: "Client connections holding a session on this node."}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Name: "pushfabric_connects_total",
			Help: "Clients that got a session."}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "pushfabric_takeovers_total",
			Help: "Connections on this node replaced by a newer connection for the same session (here or on another node)."}),
	}
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_pushes_received_total",
		Help: "Pushes handed to a session's connection on this node, queued or not."}, []string{"priority"})
	written := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_pushes_written_total",
		Help: "Pushes written to a client socket."}, []string{"priority"})
	for _, p := range []push.Priority{push.High, push.Low} {
		m.received[p] = received.WithLabelValues(p.String())
		m.written[p] = written.WithLabelValues(p.String())
	}
	rejections := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_rejections_total",
		Help: "Clients turned away before they got a session, by reason."}, []string{"reason"})
	m.rejections = preset(rejections, RejectAuth, RejectHandshake, RejectShutdown, RejectRefused, RejectOrigin)
	disconnects := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_disconnects_total",
		Help: "Connections ended, by close reason."}, []string{"reason"})
	m.disconnects = make(map[wire.CloseReason]prometheus.Counter, len(wire.CloseReasons))
	for _, r := range wire.CloseReasons {
		m.disconnects[r] = disconnects.WithLabelValues(string(r))
	}
	streams := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_response_streams_total",
		Help: "Requests answered, by how their response ended."}, []string{"outcome"})
	m.streams = preset(streams, StreamCompleted, StreamFailed, StreamCanceled, StreamAbandoned)
	panics := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_connection_panics_total",
		Help: "Panics contained on a connection's goroutines (each closed that connection at most), by goroutine."}, []string{"goroutine"})
	m.panics = preset(panics, PanicHandshake, PanicReader, PanicRequest, PanicWriter, PanicFlusher)
	lost := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushfabric_connection_pushes_lost_total",
		Help: "Pushes of a connection neither written nor dead-lettered, by reason: sink_panic (the dead-letter sink panicked on the connection, which then hands it nothing more). Each is logged with its push id."}, []string{"reason"})
	m.lost = preset(lost, LostSinkPanic)
	for _, c := range []prometheus.Collector{m.bytesWritten, m.batchSize, m.queueWait, m.sessions, m.connects,
		m.takeovers, received, written, rejections, disconnects, streams, panics, lost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// preset makes the counters of vec for every label value.
func preset(vec *prometheus.CounterVec, values ...string) map[string]prometheus.Counter {
	out := make(map[string]prometheus.Counter, len(values))
	for _, v := range values {
		out[v] = vec.WithLabelValues(v)
	}
	return out
}

// privateMetrics are the collectors of a server given none.
func privateMetrics() *Metrics {
	m, _ := NewMetrics(prometheus.NewRegistry())
	return m
}
