package edge

import (
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/internal/stats"
)

// Metrics count what the edge does, with the standard library only: each
// count is an atomic add on the push path, never an allocation. Read them
// with [Metrics.Stats] (or [Server.Stats]); the composition root exports
// them to Prometheus when scraped. Make them with NewMetrics; a Server given
// none keeps its own. Several servers may share one set.
type Metrics struct {
	received, written [2]stats.Counter // by priority
	bytesWritten      stats.Counter
	batchSize         *stats.Histogram
	queueWait         *stats.Histogram
	sessions          stats.Gauge
	connects          stats.Counter
	rejections        map[string]*stats.Counter // by Reject*; the maps are never changed once made
	disconnects       map[wire.CloseReason]*stats.Counter
	takeovers         stats.Counter
	streams           map[string]*stats.Counter // by Stream*
	panics            map[string]*stats.Counter // by goroutine (Panic*)
	lost              map[string]*stats.Counter // by reason (Lost*)
	receiptFrames     stats.Counter
	confirmed         stats.Counter
	unconfirmed       map[string]*stats.Counter // by Unconfirmed* outcome
	unconfirmedNow    stats.Gauge
	limits            map[string]*stats.Counter // by Limit*
	handshakes        stats.Gauge               // sockets in their handshake now
	pendingFrameBytes stats.Gauge               // reserved under Config.MaxPendingFrameBytes now
	refreshes         map[string]*stats.Counter // by Refresh* outcome
}

// Rejection reasons: why a client never got a session.
const (
	RejectAuth       = "auth"       // authentication failed
	RejectHandshake  = "handshake"  // the WebSocket upgrade or TCP hello failed or timed out
	RejectShutdown   = "shutdown"   // the node was stopping
	RejectRefused    = "refused"    // the Admit or connect hook refused it
	RejectOrigin     = "origin"     // a browser page from an origin not allowed (WebSocket)
	RejectOverloaded = "overloaded" // the node was at a limit (Limit*: sessions, connect rates, handshakes)
)

// Limits, the labels of Stats.LimitRefusals: what was refused at which of
// the Config's limits.
const (
	LimitSessions          = "sessions"            // a client over MaxSessions: closed overloaded
	LimitConnectRate       = "connect_rate"        // a socket over ConnectRate: closed before its handshake
	LimitConnectRatePerIP  = "connect_rate_per_ip" // a socket over ConnectRatePerIP: closed before its handshake
	LimitHandshakes        = "handshakes"          // a socket over MaxHandshakes: closed at once
	LimitClientFrameRate   = "client_frame_rate"   // a connection over ClientFrameRate: closed overloaded
	LimitClientByteRate    = "client_byte_rate"    // a connection over ClientByteRate: closed overloaded
	LimitRequestRate       = "request_rate"        // a request over RequestRate: answered rate_limited
	LimitPendingFrameBytes = "pending_frame_bytes" // a connection whose frame found MaxPendingFrameBytes taken: closed overloaded
	LimitGroups            = "groups"              // a token naming more than MaxGroups groups: refused auth
)

// Why a connection's pushes were lost: neither written nor dead-lettered.
const (
	LostSinkPanic = "sink_panic" // the dead-letter sink panicked on the connection
)

// What became of receipt-pushes that were not confirmed (see [Confirmable]).
const (
	UnconfirmedHandedOver   = "handed_over"   // the connection ended: passed to the session's newer connection here, or to its receipt's Moved
	UnconfirmedTimedOut     = "timed_out"     // not confirmed within the receipt timeout: dead-lettered unconfirmed
	UnconfirmedDeadLettered = "dead_lettered" // the connection ended and the push had no receipt: dead-lettered unconfirmed
)

// Outcomes of a request's response stream.
const (
	StreamCompleted = "completed" // ended normally
	StreamFailed    = "failed"    // ended with an error frame
	StreamCanceled  = "canceled"  // canceled by the client
	StreamAbandoned = "abandoned" // the connection closed first
)

// NewMetrics makes a set of the edge's counts, every one at 0.
func NewMetrics() *Metrics {
	return &Metrics{
		batchSize:   stats.NewHistogram(1, 2, 4, 8, 16, 32, 64, 128),
		queueWait:   stats.NewHistogram(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
		rejections:  stats.Counters(RejectAuth, RejectHandshake, RejectShutdown, RejectRefused, RejectOrigin, RejectOverloaded),
		disconnects: stats.Counters(wire.CloseReasons...),
		streams:     stats.Counters(StreamCompleted, StreamFailed, StreamCanceled, StreamAbandoned),
		panics:      stats.Counters(PanicHandshake, PanicReader, PanicRequest, PanicWriter, PanicFlusher),
		lost:        stats.Counters(LostSinkPanic),
		unconfirmed: stats.Counters(UnconfirmedHandedOver, UnconfirmedTimedOut, UnconfirmedDeadLettered),
		limits: stats.Counters(LimitSessions, LimitConnectRate, LimitConnectRatePerIP, LimitHandshakes,
			LimitClientFrameRate, LimitClientByteRate, LimitRequestRate, LimitPendingFrameBytes, LimitGroups),
		refreshes: stats.Counters(RefreshOK, RefreshRefused, RefreshIgnored),
	}
}

// privateMetrics are the counts of a server given none.
func privateMetrics() *Metrics { return NewMetrics() }

// Stats are what a server (or the servers sharing one [Metrics]) counted
// since its Metrics were made. Every map holds every key its doc names,
// from 0.
type Stats struct {
	Received     [2]uint64 // pushes handed to a session's connection, queued or not, by priority (push.High, push.Low)
	Written      [2]uint64 // pushes written to a client socket, by priority
	BytesWritten uint64    // bytes written to client sockets, frames and transport framing included
	// BatchSize counts the pushes carried by each socket write that carried
	// any (buckets ending at 1, 2, 4 … 128).
	BatchSize stats.HistogramSnapshot
	// QueueWait counts each push's time, in seconds, from entering its
	// session's queue to its write (buckets ending at 50 µs … 5 s).
	QueueWait   stats.HistogramSnapshot
	Sessions    int64                       // connections holding a session now
	Connects    uint64                      // clients that got a session
	Rejections  map[string]uint64           // clients turned away before they got a session, by Reject* reason
	Disconnects map[wire.CloseReason]uint64 // connections ended, by every wire.CloseReasons
	Takeovers   uint64                      // connections replaced by a newer one of the same session
	Streams     map[string]uint64           // requests answered, by Stream* outcome
	Panics      map[string]uint64           // panics contained, by Panic* goroutine
	Lost        map[string]uint64           // pushes neither written nor dead-lettered, by Lost* reason; each was logged
	// ReceiptFrames counts the receipt frames clients sent; Confirmed the
	// receipt-pushes they confirmed (ids not held unconfirmed are not
	// counted); Unconfirmed the receipt-pushes that left a window, or a
	// closing connection's queue, unconfirmed, by Unconfirmed* outcome;
	// UnconfirmedNow the receipt-pushes held in windows now, on every
	// connection together.
	ReceiptFrames  uint64
	Confirmed      uint64
	Unconfirmed    map[string]uint64
	UnconfirmedNow int64
	// LimitRefusals counts what was refused at a limit, by Limit* label;
	// Handshakes are the sockets in their handshake now and
	// PendingFrameBytes the memory reserved by partly received frames now
	// (Config.MaxHandshakes, Config.MaxPendingFrameBytes).
	LimitRefusals     map[string]uint64
	Handshakes        int64
	PendingFrameBytes int64
	// Refreshes counts the refresh frames clients sent, by Refresh*
	// outcome.
	Refreshes map[string]uint64
}

// Stats reads the counts. It never blocks; counts made meanwhile may be in
// one field and not yet in another.
func (m *Metrics) Stats() Stats {
	return Stats{
		Received:     [2]uint64{m.received[0].Load(), m.received[1].Load()},
		Written:      [2]uint64{m.written[0].Load(), m.written[1].Load()},
		BytesWritten: m.bytesWritten.Load(), BatchSize: m.batchSize.Snapshot(), QueueWait: m.queueWait.Snapshot(),
		Sessions: m.sessions.Load(), Connects: m.connects.Load(), Takeovers: m.takeovers.Load(),
		Rejections: stats.Loads(m.rejections), Disconnects: stats.Loads(m.disconnects), Streams: stats.Loads(m.streams),
		Panics: stats.Loads(m.panics), Lost: stats.Loads(m.lost),
		ReceiptFrames: m.receiptFrames.Load(), Confirmed: m.confirmed.Load(),
		Unconfirmed: stats.Loads(m.unconfirmed), UnconfirmedNow: m.unconfirmedNow.Load(),
		LimitRefusals: stats.Loads(m.limits), Handshakes: m.handshakes.Load(), PendingFrameBytes: m.pendingFrameBytes.Load(),
		Refreshes: stats.Loads(m.refreshes),
	}
}

// Stats reads the server's counts (those of its Options.Metrics, shared
// with any other server given the same). It never blocks.
func (s *Server) Stats() Stats { return s.metrics.Stats() }
