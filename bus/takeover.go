package bus

import (
	"fmt"
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
// follow the session (those that came over NATS as their receipts say;
// the producer of each already had `enqueued`, unless it waits for
// `written`); a newer local one answers with its own announcement, so an
// older holder that missed it learns.
func (d *Dispatcher) control(m *nats.Msg, session string) {
	if c := m.Header.Get(protocol.HeaderControl); c != protocol.ControlTakeover {
		d.rejectInvalid(m, session, protocol.Control, fmt.Errorf("%s %q: want %s", protocol.HeaderControl, c, protocol.ControlTakeover))
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
	local.CloseReplaced(func(e edge.Envelope) error { // a push made in the process: give it a message of its own
		d.handOver(pushMsg(d.prefix, session, &e), session, e.Frame.Priority.String(), "", push.ReasonReplaced)
		return nil // handed over, or dead-lettered by the hand-over
	})
}

// forward hands over a push that arrived for a session now held on
// another node. Nothing has answered its producer yet. The connection never
// echoes its own messages, so it does not come back here.
func (d *Dispatcher) forward(m *nats.Msg, session string, p push.Priority) {
	ensureID(m)
	owed, failed := m.Reply, push.ReasonReplaced
	mode, err := protocol.AckMode(m.Header)
	switch {
	case err == nil && mode == protocol.AckNone:
		owed = ""
	case err == nil && mode == protocol.AckReceived:
		failed = push.ReasonUnconfirmed // no node holds the session: parked, as its connection's unconfirmed pushes are
	}
	d.handOver(m, session, p.String(), owed, failed)
}

// handOver sends push m to the node holding session; failed is the
// dead-letter reason when no node takes it.
func (d *Dispatcher) handOver(m *nats.Msg, session, priority, owed string, failed push.Reason) {
	d.forwarded.Add(1)
	d.handovers.send(m, session, priority, owed, failed)
}
