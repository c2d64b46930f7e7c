package bus

import (
	"strconv"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// announce publishes a takeover for c's session: this node holds it with a
// connection started at c.Started().
func (d *Dispatcher) announce(c *edge.Conn) {
	m := &nats.Msg{
		Subject: protocol.PushSubject(d.prefix, c.Session(), protocol.Control),
		Header: nats.Header{
			protocol.HeaderControl: []string{protocol.ControlTakeover},
			protocol.HeaderNode:    []string{d.node},
			protocol.HeaderConn:    []string{strconv.FormatInt(c.Started().UnixNano(), 10)},
		},
	}
	if err := d.nc.PublishMsg(m); err != nil {
		d.log.Warn("takeover announcement failed", zap.String("session", c.Session()), zap.Error(err))
	}
}

// control handles a takeover announcement for a session this node may
// hold. The newer connection (start time, then node name) keeps the
// session: an older local one is closed as replaced and its queued pushes
// follow the session; a newer local one answers with its own announcement,
// so an older holder that missed it learns.
func (d *Dispatcher) control(m *nats.Msg, session string) {
	if m.Header.Get(protocol.HeaderControl) != protocol.ControlTakeover {
		d.reject(m, session, protocol.Control, push.ReasonInvalid)
		return
	}
	node := m.Header.Get(protocol.HeaderNode)
	started, err := strconv.ParseInt(m.Header.Get(protocol.HeaderConn), 10, 64)
	local := d.reg.Get(session)
	if err != nil || node == "" || local == nil || node == d.node {
		return
	}
	mine := local.Started().UnixNano()
	if started < mine || started == mine && node < d.node {
		d.announce(local)
		return
	}
	if b := d.laneOf(session).binding(session); b != nil {
		b.replaced.Store(true)
	}
	d.log.Debug("session taken over", zap.String("session", session), zap.String("by", node))
	local.CloseReplaced(func(f edge.Frame) error {
		d.handOverQueued(session, f)
		return nil // handed over, or dead-lettered by the hand-over
	})
}

// handOverQueued hands a push that was queued for a replaced connection to
// the session's new node. Its producer already had `enqueued`, unless it
// waits for `written`. A redelivered parked push stays parked instead: its
// dead letter is still in the stream, for the new node to redeliver.
func (d *Dispatcher) handOverQueued(session string, f edge.Frame) {
	if _, ok := f.Meta.(*parked); ok {
		return
	}
	m, span := msgOf(f.Meta)
	if span != nil {
		span.AddEvent("forwarded to the session's new node")
		span.End()
	}
	owed := ""
	if tm, ok := f.Meta.(*tracedMsg); ok && tm.ackWritten {
		owed = tm.Reply
	}
	if m == nil { // pushed in this process: give it a message of its own
		m = pushMsg(d.prefix, session, &f)
	} else {
		stampID(m, f.ID) // the same id on the new node
	}
	d.handOver(m, session, f.Priority.String(), owed)
}

// forward hands over a push that arrived for a session now held on
// another node. Nothing has answered its producer yet. The connection never
// echoes its own messages, so it does not come back here.
func (d *Dispatcher) forward(m *nats.Msg, session string, p push.Priority) {
	ensureID(m)
	owed := m.Reply
	if mode, err := protocol.AckMode(m.Header); err == nil && mode == protocol.AckNone {
		owed = ""
	}
	d.handOver(m, session, p.String(), owed)
}

func (d *Dispatcher) handOver(m *nats.Msg, session, priority, owed string) {
	d.forwarded.Add(1)
	d.handovers.send(m, session, priority, owed)
}
