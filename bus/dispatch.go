package bus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// dispatch handles one message from a session subscription. A reply
// subject the node may not answer on (protocol.Answerable) is forgotten:
// the message is handled as one without.
func (d *Dispatcher) dispatch(l *lane, m *nats.Msg) {
	if m.Reply != "" && !d.replies.Answerable(m.Reply) {
		d.unanswerable(m)
	}
	if group, token, ok := protocol.ParseGroupSubject(d.prefix, m.Subject); ok {
		if token == protocol.Presence {
			d.askGroupPresence(m, group)
			return
		}
		d.admitGroupPush(l, m, group, token)
		return
	}
	session, token, ok := protocol.ParseSubject(d.prefix, m.Subject)
	switch {
	case !ok:
		d.invalid.Add(1)
		d.log.Error("message on an unexpected subject", zap.String("subject", m.Subject))
	case token == protocol.Control:
		d.control(m, session)
	case token == protocol.Member:
		d.member(m, session)
	case token == protocol.Presence:
		d.presence(m, session)
	case token == protocol.Kick:
		d.kick(m, session)
	default:
		p, err := push.ParsePriority(token)
		if err == nil {
			d.push(l, m, session, p)
			return
		}
		d.rejectInvalid(m, session, token, fmt.Errorf("subject token %q: %w", token, err))
	}
}

// push hands one push to the session's connection, and answers the node
// that handed it over, if it is a hand-over.
func (d *Dispatcher) push(l *lane, m *nats.Msg, session string, p push.Priority) {
	handing := d.intake(m)
	status, reason := d.deliver(l, m, session, p, handing != "")
	if handing != "" {
		a := protocol.Ack{Status: status, Reason: string(reason), Node: d.node, ID: m.Header.Get(protocol.HeaderID)}
		_ = d.nc.PublishMsg(a.Msg(handing))
	}
}

// intake reads whom a push answers to. A message whose own reply subject is
// under the edges' inbox is a hand-over from another node, and the
// producer's reply subject is in its Push-Reply; on any other message
// Push-Reply is not honoured. Either way the message's Reply becomes the
// producer's, Push-Reply and Push-Session leave its headers (no one outside
// sets them for the edge), and what is returned is the handing node's
// subject to answer, or "".
func (d *Dispatcher) intake(m *nats.Msg) (handing string) {
	if strings.HasPrefix(m.Reply, d.edgeInbox) {
		handing, m.Reply = m.Reply, m.Header.Get(protocol.HeaderReply)
		if m.Reply != "" && !d.replies.Answerable(m.Reply) {
			d.unanswerable(m)
		}
	}
	if len(m.Header) > 0 {
		delete(m.Header, protocol.HeaderReply)
		delete(m.Header, protocol.HeaderSession)
	}
	return handing
}

// unanswerable forgets m's reply subject, one the node may not answer on,
// and says so at debug level.
func (d *Dispatcher) unanswerable(m *nats.Msg) {
	d.log.Debug("reply subject not answered", zap.String("subject", m.Subject), zap.String("reply", m.Reply))
	m.Reply = ""
}

// deliver queues one push, or hands it over, or dead-letters it, and says
// which for a handing node: enqueued (this node took it) or dead with the
// reason. handedOver: m is a hand-over from another node.
func (d *Dispatcher) deliver(l *lane, m *nats.Msg, session string, p push.Priority, handedOver bool) (string, push.Reason) {
	b := l.binding(session)
	if b != nil && b.replaced.Load() {
		d.forward(m, session, p)
		return protocol.StatusEnqueued, ""
	}
	if b != nil {
		if held, dead := d.hold(b, m, session, p); held {
			return statusOf(dead), dead
		}
	}
	e, mode, err := envelopeOf(m, &l.ids)
	if err != nil {
		d.log.Debug("invalid push", zap.String("subject", m.Subject), zap.Error(err))
		d.rejectInvalid(m, session, p.String(), err)
		return protocol.StatusDead, push.ReasonInvalid
	}
	c := d.reg.Get(session)
	if c == nil {
		return d.orphan(m, session, p, e.Frame.WantsReceipt, handedOver)
	}
	d.dispatched.Add(1)
	var span trace.Span
	e.Receipt, span = d.receipt(l, m, session, p, &e.Frame, mode)
	if !e.Expires.IsZero() && !time.Now().Before(e.Expires) {
		// Stale already: a producer waiting hears dead, not enqueued.
		return protocol.StatusDead, d.die(&e, m, session, p, mode, push.ReasonExpired)
	}
	if err = c.TryPush(p, e); err == nil {
		if span != nil {
			span.AddEvent("enqueued")
		}
		if mode == protocol.AckEnqueued {
			d.sink.ack(m, protocol.StatusEnqueued, "", e.Frame.ID)
		}
		return protocol.StatusEnqueued, ""
	}
	return protocol.StatusDead, d.refused(&e, m, session, p, mode, err)
}

// orphan settles a push for a session whose connection has just ended
// here (its subscription outlives it a moment): dead-lettered closed, or,
// a receipt-push, handed over as that connection's unconfirmed pushes are,
// unless it is a hand-over already (no node took it, so no ping-pong
// between nodes letting go of the session): dead-lettered unconfirmed.
func (d *Dispatcher) orphan(m *nats.Msg, session string, p push.Priority, wantsReceipt, handedOver bool) (string, push.Reason) {
	reason := push.ReasonClosed
	switch {
	case wantsReceipt && !handedOver:
		d.forward(m, session, p)
		return protocol.StatusEnqueued, ""
	case wantsReceipt:
		reason = push.ReasonUnconfirmed
	}
	d.reject(m, session, p.String(), reason)
	return protocol.StatusDead, reason
}

// statusOf is the status for a handing node of a push dead-lettered with
// reason, or taken when reason is "".
func statusOf(reason push.Reason) string {
	if reason != "" {
		return protocol.StatusDead
	}
	return protocol.StatusEnqueued
}

// refused answers for a push TryPush did not queue: the edge has
// dead-lettered it (its receipt has), or it dies here. A producer waiting
// for `enqueued` hears `dead`. It returns the dead-letter reason. (Apart
// from push, so that the error's target escapes only on this path.)
func (d *Dispatcher) refused(e *edge.Envelope, m *nats.Msg, session string, p push.Priority, mode string, err error) push.Reason {
	var dle *edge.DeadLetteredError
	if !errors.As(err, &dle) {
		return d.die(e, m, session, p, mode, refusalReason(err))
	}
	if mode == protocol.AckEnqueued {
		d.sink.ack(m, protocol.StatusDead, string(dle.Reason), e.Frame.ID)
	}
	return dle.Reason
}

// die dead-letters a push that was not queued, through its receipt, and
// tells a producer waiting for `enqueued` that it is dead; it returns
// reason.
func (d *Dispatcher) die(e *edge.Envelope, m *nats.Msg, session string, p push.Priority, mode string, reason push.Reason) push.Reason {
	if reason == push.ReasonInvalid {
		d.invalid.Add(1)
	}
	e.Receipt.Dead(edge.DeadLetter{Envelope: *e, Session: session, Priority: p, Reason: reason})
	if mode == protocol.AckEnqueued {
		d.sink.ack(m, protocol.StatusDead, string(reason), e.Frame.ID)
	}
	return reason
}

// refusalReason is the dead-letter reason for a TryPush error under the
// TryPushReturns policy.
func refusalReason(err error) push.Reason {
	switch {
	case errors.Is(err, edge.ErrQueueFull):
		return push.ReasonQueueFull
	case errors.Is(err, edge.ErrClosed):
		return push.ReasonClosed
	}
	return push.ReasonInvalid
}

// reject dead-letters a push the node will not queue and tells a producer
// waiting for any acknowledgement.
// (An invalid push goes to rejectInvalid, which says what was invalid.)
func (d *Dispatcher) reject(m *nats.Msg, session, priority string, reason push.Reason) {
	d.answerDead(m, reason)
	d.sink.write(session, priority, reason, m, nil)
}

// rejectInvalid is reject for an invalid push, its dead letter saying
// what was invalid (why names the header or subject token).
func (d *Dispatcher) rejectInvalid(m *nats.Msg, session, priority string, why error) {
	d.invalid.Add(1)
	d.answerDead(m, push.ReasonInvalid)
	d.sink.writeInvalid(session, priority, m, why)
}

// answerDead gives m an id if it has none and tells a producer waiting
// for any acknowledgement that it is dead for reason.
func (d *Dispatcher) answerDead(m *nats.Msg, reason push.Reason) {
	id := ensureID(m)
	if mode, err := protocol.AckMode(m.Header); err != nil || mode != protocol.AckNone {
		d.sink.ack(m, protocol.StatusDead, string(reason), id)
	}
}
