package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/internal/stats"
	"github.com/pushfabric/pushfabric/push"
)

// registerMetrics registers on reg the node's pushfabric_* collectors (all
// but pushfabric_ready, see readyGauge): one per part of the node, each
// reading that part's Stats once per scrape, so the libraries count with
// the standard library and only the node knows Prometheus. Every label
// value a Stats map holds from the start is exposed from the start, at 0.
func registerMetrics(reg prometheus.Registerer, srv *edge.Server, m *bus.Metrics, c *bus.Conn, d *bus.Dispatcher, w *dlq.Writer) error {
	for _, col := range []prometheus.Collector{edgeCollector(srv), busCollector(m), connCollector(c),
		dispatcherCollector(d), writerCollector(w)} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// edgeCollector exports the edge server's Stats.
func edgeCollector(srv *edge.Server) prometheus.Collector {
	return statsCollector[edge.Stats]{read: srv.Stats, families: []family[edge.Stats]{
		counterBy("pushfabric_pushes_received_total", "Pushes handed to a session's connection on this node, queued or not.",
			"priority", func(s edge.Stats) map[string]uint64 { return byPriority(s.Received) }),
		counterBy("pushfabric_pushes_written_total", "Pushes written to a client socket.",
			"priority", func(s edge.Stats) map[string]uint64 { return byPriority(s.Written) }),
		counter("pushfabric_bytes_written_total", "Bytes written to client sockets, frames and transport framing included.",
			func(s edge.Stats) uint64 { return s.BytesWritten }),
		histogram("pushfabric_write_batch_pushes", "Pushes carried by one write to a client socket.",
			func(s edge.Stats) stats.HistogramSnapshot { return s.BatchSize }),
		histogram("pushfabric_queue_wait_seconds", "Time from a push entering its session's queue to its write.",
			func(s edge.Stats) stats.HistogramSnapshot { return s.QueueWait }),
		gauge("pushfabric_sessions", "Client connections holding a session on this node.",
			func(s edge.Stats) float64 { return float64(s.Sessions) }),
		counter("pushfabric_connects_total", "Clients that got a session.", func(s edge.Stats) uint64 { return s.Connects }),
		counterBy("pushfabric_rejections_total", "Clients turned away before they got a session, by reason.",
			"reason", func(s edge.Stats) map[string]uint64 { return s.Rejections }),
		counterBy("pushfabric_limit_refusals_total", "What was refused at one of the node's or a client's limits, by limit (docs/operations.md, Limits).",
			"limit", func(s edge.Stats) map[string]uint64 { return s.LimitRefusals }),
		gauge("pushfabric_handshakes", "Client sockets accepted and not yet through their handshake and authentication (--max-handshakes).",
			func(s edge.Stats) float64 { return float64(s.Handshakes) }),
		gauge("pushfabric_pending_frame_bytes", "Memory reserved by client frames partly received, on all connections (--max-pending-frame-bytes).",
			func(s edge.Stats) float64 { return float64(s.PendingFrameBytes) }),
		counterBy("pushfabric_disconnects_total", "Connections ended, by close reason.",
			"reason", func(s edge.Stats) map[wire.CloseReason]uint64 { return s.Disconnects }),
		counter("pushfabric_takeovers_total", "Connections on this node replaced by a newer connection for the same session (here or on another node).",
			func(s edge.Stats) uint64 { return s.Takeovers }),
		counterBy("pushfabric_response_streams_total", "Requests answered, by how their response ended.",
			"outcome", func(s edge.Stats) map[string]uint64 { return s.Streams }),
		counterBy("pushfabric_connection_panics_total", "Panics contained on a connection's goroutines (each closed that connection at most), by goroutine.",
			"goroutine", func(s edge.Stats) map[string]uint64 { return s.Panics }),
		counterBy("pushfabric_connection_pushes_lost_total", "Pushes of a connection neither written nor dead-lettered, by reason: sink_panic (the dead-letter sink panicked on the connection, which then hands it nothing more). Each is logged with its push id.",
			"reason", func(s edge.Stats) map[string]uint64 { return s.Lost }),
		counter("pushfabric_receipt_frames_total", "Receipt frames clients sent, each confirming one or more push ids.",
			func(s edge.Stats) uint64 { return s.ReceiptFrames }),
		counter("pushfabric_pushes_confirmed_total", "Push-Ack: received pushes their client confirmed (ids not held unconfirmed are not counted).",
			func(s edge.Stats) uint64 { return s.Confirmed }),
		counterBy("pushfabric_pushes_unconfirmed_total", "Push-Ack: received pushes that left a connection unconfirmed, by outcome: handed_over (the connection ended: to the session's newer connection here, or handed over through NATS, dead-lettered unconfirmed if no node took it), timed_out (not confirmed within --receipt-timeout: dead-lettered unconfirmed), dead_lettered (the connection ended and the push, made in the process, had nowhere to go).",
			"outcome", func(s edge.Stats) map[string]uint64 { return s.Unconfirmed }),
		gauge("pushfabric_pushes_awaiting_receipt", "Push-Ack: received pushes written and not yet confirmed, in the windows of all connections on this node (at most --receipt-window each).",
			func(s edge.Stats) float64 { return float64(s.UnconfirmedNow) }),
		counterBy("pushfabric_token_refreshes_total", "Refresh frames clients sent, by result: ok (a valid token for the connection's session moved its expiry), refused (the connection was closed auth), ignored (a connection without an expiry, as in development mode).",
			"result", func(s edge.Stats) map[string]uint64 { return s.Refreshes }),
	}}
}

// byPriority labels counts by priority.
func byPriority(n [2]uint64) map[string]uint64 {
	return map[string]uint64{push.High.String(): n[push.High], push.Low.String(): n[push.Low]}
}

// busCollector exports the bus's Metrics: dead letters, acks, delivery
// latency, forwarded requests.
func busCollector(m *bus.Metrics) prometheus.Collector {
	return statsCollector[bus.MetricsStats]{read: m.Stats, families: []family[bus.MetricsStats]{
		counterBy("pushfabric_dead_letters_total", "Pushes dead-lettered by this node, by reason.",
			"reason", func(s bus.MetricsStats) map[push.Reason]uint64 { return s.DeadLetters }),
		counterBy("pushfabric_acks_total", "Acknowledgements sent to producers, by status.",
			"status", func(s bus.MetricsStats) map[string]uint64 { return s.Acks }),
		histogram("pushfabric_delivery_latency_seconds", "Time from the producer's send (Push-Sent-At) to the push's write to the client socket.",
			func(s bus.MetricsStats) stats.HistogramSnapshot { return s.Latency }),
		counterBy("pushfabric_backend_requests_total", "Client requests forwarded to backends over NATS, by how they ended.",
			"outcome", func(s bus.MetricsStats) map[string]uint64 { return s.Requests }),
		counter("pushfabric_backend_replies_discarded_total", "Backend replies that arrived after their request had ended.",
			func(s bus.MetricsStats) uint64 { return s.LateReplies }),
	}}
}

// connCollector exports the NATS connection's troubles.
func connCollector(c *bus.Conn) prometheus.Collector {
	return statsCollector[bus.ConnStats]{read: c.Stats, families: []family[bus.ConnStats]{
		counter("pushfabric_nats_reconnects_total", "Reconnections to NATS.", func(s bus.ConnStats) uint64 { return s.Reconnects }),
		counter("pushfabric_nats_slow_consumer_events_total", "Times NATS dropped messages because this node read too slowly.",
			func(s bus.ConnStats) uint64 { return s.SlowConsumers }),
		counter("pushfabric_nats_dropped_messages_total", "Messages NATS dropped because this node read too slowly, before it saw them: no dead letter records them; each session's are logged.",
			func(s bus.ConnStats) uint64 { return s.DroppedMessages }),
		counter("pushfabric_nats_slow_consumer_disconnects_total", "Times the NATS server closed this node's connection because it read too slowly; what the server held for it was lost, uncounted.",
			func(s bus.ConnStats) uint64 { return s.ServerSlowConsumers }),
		counter("pushfabric_nats_permission_errors_total", "Publishes or subscriptions the NATS server refused.",
			func(s bus.ConnStats) uint64 { return s.PermissionErrors }),
	}}
}

// dispatcherCollector exports the dispatcher's hand-overs, group pushes,
// its answers to presence requests and kicks, and the session events it
// published.
func dispatcherCollector(d *bus.Dispatcher) prometheus.Collector {
	return statsCollector[bus.DispatcherStats]{read: d.Stats, families: []family[bus.DispatcherStats]{
		counterBy("pushfabric_handovers_total", "Pushes this node handed to the node that took their session, by how it ended.",
			"outcome", func(s bus.DispatcherStats) map[string]uint64 { return s.Handovers }),
		counter("pushfabric_group_pushes_received_total", "Group pushes and broadcasts that reached this node.",
			func(s bus.DispatcherStats) uint64 { return s.GroupPushes }),
		counter("pushfabric_group_member_copies_total", "Copies of group pushes and broadcasts queued to local members (each then counted as a push received).",
			func(s bus.DispatcherStats) uint64 { return s.MemberCopies }),
		counter("pushfabric_group_overflows_total", "Group pushes this node dead-lettered queue_full for the group (dlq.<prefix>.queue_full.group.<group>.<priority>) because its fan-out backlog was full: none of its members got them.",
			func(s bus.DispatcherStats) uint64 { return s.GroupOverflows }),
		gauge("pushfabric_group_fanout_backlog", "Member copies of group pushes this node has taken in and not yet queued to its members.",
			func(s bus.DispatcherStats) float64 { return float64(s.FanoutBacklog) }),
		gauge("pushfabric_group_subscriptions", "Group subscriptions this node holds: one per group with local members, and the broadcast one while it holds a connection.",
			func(s bus.DispatcherStats) float64 { return float64(s.GroupSubscriptions) }),
		counter("pushfabric_presence_requests_total", "Presence requests this node answered (for sessions it holds).",
			func(s bus.DispatcherStats) uint64 { return s.Presences }),
		counter("pushfabric_presence_requests_dropped_total", "Group presence requests this node did not answer because too many were already waiting (a flood): the asker misses this node's members.",
			func(s bus.DispatcherStats) uint64 { return s.PresencesDropped }),
		counter("pushfabric_kicks_total", "Connections this node closed with reason revoked because of a kick.",
			func(s bus.DispatcherStats) uint64 { return s.Kicks }),
		counterBy("pushfabric_session_events_total", "Session events this node published, by event: connected, disconnected.",
			"event", func(s bus.DispatcherStats) map[string]uint64 { return s.Events }),
		counter("pushfabric_session_event_failures_total", "Session events this node could not publish (the NATS connection was closed or its buffer full); each is logged.",
			func(s bus.DispatcherStats) uint64 { return s.EventsFailed }),
	}}
}

// writerCollector exports the dead-letter writer's Stats: dead letters
// written, writes that failed and were retried, dead letters trimmed to
// fit, and pushes lost, by reason.
func writerCollector(w *dlq.Writer) prometheus.Collector {
	return statsCollector[dlq.WriterStats]{read: w.Stats, families: []family[dlq.WriterStats]{
		counter("pushfabric_dead_letters_written_total", "Dead letters acknowledged by the PUSH_DLQ stream.",
			func(s dlq.WriterStats) uint64 { return s.Written }),
		counter("pushfabric_dead_letter_write_failures_total", "Dead-letter writes that failed for a reason that may pass (JetStream away, stream missing, no acknowledgement) and were queued again.",
			func(s dlq.WriterStats) uint64 { return s.Retried }),
		counter("pushfabric_dead_letters_trimmed_total", "Dead letters that lost their payload or largest headers to fit the NATS server's limits (Push-Trimmed says what).",
			func(s dlq.WriterStats) uint64 { return s.Trimmed }),
		counterBy("pushfabric_pushes_lost_total", "Pushes neither delivered nor dead-lettered, by reason: buffer_full (the dead-letter buffer was full), refused (the stream refused the dead letter for good), gave_up (its writes kept failing), shutdown (the node stopped before writing it). Each is logged with its push id.",
			"reason", func(s dlq.WriterStats) map[dlq.LostReason]uint64 { return s.LostBy }),
	}}
}
