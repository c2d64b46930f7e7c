package bus

import (
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// The receipts of pushes that came over NATS, one small type per kind,
// each knowing what its push's write, death and move to another node mean:
//
//   - *natsPush, a plain push: written, its delivery latency is counted;
//     dead, its message becomes the dead letter; moved, it is handed over.
//   - *writtenAck, a push whose producer waits for `written`: as plain, and
//     the producer hears `written` or `dead`, or, handed over, the taking
//     node answers it.
//   - *receivedAck, a push whose producer asked for `received`: the client
//     application confirms it (edge.Confirmable); confirmed, the producer
//     hears `received`; dead, `dead`; moved (its connection ended first),
//     it is handed over and dead-lettered unconfirmed if no node takes it.
//   - *tracedPush (trace.go), a push whose delivery is traced: the span ends
//     with the push's fate, around the receipt of its kind.
//   - *parkedPush (redeliver.go), a push redelivered from the dead-letter
//     stream: written, its dead letter is deleted; otherwise it stays
//     parked.
//
// Pushes made in the process have none: the edge hands their deaths to
// the Sink, and CloseReplaced hands them to the takeover's forward.

// natsPush is the receipt of a plain push: a NATS message nothing waits
// on but its dead letter or its hand-over. Each is settled once, and lets
// go of its message then (see plainReceipts).
type natsPush struct {
	m *nats.Msg
	d *Dispatcher
}

func (r *natsPush) Written(e *edge.Envelope) {
	r.d.observeLatency(e)
	r.m = nil
}

// observeLatency counts the delivery latency of a push just written.
func (d *Dispatcher) observeLatency(e *edge.Envelope) {
	if !e.Sent.IsZero() {
		d.sink.m.latency.Observe(time.Since(e.Sent).Seconds())
	}
}

func (r *natsPush) Dead(dl edge.DeadLetter) {
	r.d.sink.write(dl.Session, dl.Priority.String(), dl.Reason, r.m, &dl.Envelope)
	r.m = nil
}

func (r *natsPush) Moved(session string, e *edge.Envelope) {
	r.handOver(session, e, "", push.ReasonReplaced)
}

// handOver hands the push to the session's new node, with the same id;
// owed is the producer's reply subject when it still waits for an ack,
// failed the dead-letter reason if no node takes it.
func (r *natsPush) handOver(session string, e *edge.Envelope, owed string, failed push.Reason) {
	stampID(r.m, e.Frame.ID)
	r.d.handOver(r.m, session, e.Frame.Priority.String(), owed, failed)
	r.m = nil
}

// writtenAck is the receipt of a push whose producer asked for a `written`
// acknowledgement (on the message's reply subject).
type writtenAck struct{ natsPush }

func (r *writtenAck) Written(e *edge.Envelope) {
	r.d.sink.ack(r.m, protocol.StatusWritten, "", e.Frame.ID)
	r.natsPush.Written(e)
}

func (r *writtenAck) Dead(dl edge.DeadLetter) {
	r.d.sink.ack(r.m, protocol.StatusDead, string(dl.Reason), dl.Frame.ID)
	r.natsPush.Dead(dl)
}

// Moved hands the push over with the producer's reply subject: the taking
// node owes the acknowledgement now.
func (r *writtenAck) Moved(session string, e *edge.Envelope) {
	r.handOver(session, e, r.m.Reply, push.ReasonReplaced)
}

// receivedAck is the receipt of a push whose producer asked for a
// `received` acknowledgement: the edge holds it, written, in its
// connection's window of unconfirmed pushes until the client confirms it.
// It keeps its message until then.
type receivedAck struct{ natsPush }

var _ edge.Confirmable = (*receivedAck)(nil)

// Written counts the latency; the producer hears nothing yet.
func (r *receivedAck) Written(e *edge.Envelope) { r.d.observeLatency(e) }

// Confirmed answers the producer `received`.
func (r *receivedAck) Confirmed(e *edge.Envelope) {
	r.d.sink.ack(r.m, protocol.StatusReceived, "", e.Frame.ID)
	r.m = nil
}

func (r *receivedAck) Dead(dl edge.DeadLetter) {
	r.d.sink.ack(r.m, protocol.StatusDead, string(dl.Reason), dl.Frame.ID)
	r.natsPush.Dead(dl)
}

// Moved hands the push over with the producer's reply subject: it follows
// the session, written or not, and the taking node owes the
// acknowledgement. No node taking it, it is dead-lettered unconfirmed.
func (r *receivedAck) Moved(session string, e *edge.Envelope) {
	r.handOver(session, e, r.m.Reply, push.ReasonUnconfirmed)
}

// receipt is the receipt for push m, by kind: received-ack for a
// receipt-push, written-ack when the producer waits for `written`, plain
// otherwise; traced around either
// when its delivery is traced, with the span. The kind is decided here,
// while the message is in the CPU's cache: by the time it is written a
// push may have waited behind thousands of others, and reading its
// headers again then would cost cache misses on every push.
func (d *Dispatcher) receipt(l *lane, m *nats.Msg, session string, p push.Priority, f *edge.Frame, mode string) (edge.Receipt, trace.Span) {
	var r edge.Receipt
	switch {
	case f.WantsReceipt:
		r = &receivedAck{natsPush{m: m, d: d}}
	case mode == protocol.AckWritten:
		r = &writtenAck{natsPush{m: m, d: d}}
	default:
		r = l.receipts.next(m, d)
	}
	if t := d.traceDelivery(r, m, session, p, f.ID); t != nil {
		return t, t.span
	}
	return r, nil
}

// plainReceipts hands out plain receipts for one lane's goroutine. A block
// of them is one allocation and each receipt a pointer into it, so a push
// costs no allocation of its own (as an id of idSource does). A block
// stays in memory while any of its receipts does; a settled receipt lets
// go of its message, so that one push long in its queue keeps no other
// push's message alive.
type plainReceipts struct {
	block []natsPush
}

const receiptsPerBlock = 128

func (b *plainReceipts) next(m *nats.Msg, d *Dispatcher) *natsPush {
	if len(b.block) == 0 {
		b.block = make([]natsPush, receiptsPerBlock)
	}
	r := &b.block[0]
	b.block = b.block[1:]
	r.m, r.d = m, d
	return r
}
