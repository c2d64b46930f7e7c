package bus

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/registry"
)

// SessionInfo describes c, held on node, as presence requests and the
// admin listener's /sessions answer.
func SessionInfo(node string, c *edge.Conn) protocol.SessionInfo {
	i := c.Info()
	return protocol.SessionInfo{Session: i.Session, Node: node, Since: i.Started, Transport: i.Transport,
		Remote: i.Remote, Queued: protocol.Queued{High: i.High, Low: i.Low}, Groups: c.Groups()}
}

// Sessions describes every connection in reg, held on node, by session
// id: what the admin listener's GET /sessions answers.
func Sessions(node string, reg *registry.Registry[edge.Conn]) []protocol.SessionInfo {
	all := []protocol.SessionInfo{}
	reg.Range(func(_ string, c *edge.Conn) bool {
		all = append(all, SessionInfo(node, c))
		return true
	})
	slices.SortFunc(all, func(a, b protocol.SessionInfo) int { return strings.Compare(a.Session, b.Session) })
	return all
}

// holder is the connection of session this node answers for: none when
// no connection here holds it, or a newer one elsewhere does (that node
// answers; this one lets go).
func (d *Dispatcher) holder(session string) *edge.Conn {
	c := d.reg.Get(session)
	if c == nil {
		return nil
	}
	if b := d.laneOf(session).binding(session); b != nil && b.replaced.Load() {
		return nil
	}
	return c
}

// presence answers a presence request for a session this node holds.
// Nothing of the request but its reply subject is read; one without a
// reply subject, or for a session not held here, is not answered.
func (d *Dispatcher) presence(m *nats.Msg, session string) {
	c := d.holder(session)
	if c == nil || m.Reply == "" {
		return
	}
	d.presences.Add(1)
	d.reply(m.Reply, SessionInfo(d.node, c))
}

// kick closes the connection of a session this node holds with reason
// revoked, and answers the request if it has a reply subject. Nothing
// else of the request is read. The answer waits (up to kickSettle) until
// the node has let go of the session's subscription, so that whoever
// asks again after it finds the session offline ("no responders") or on
// the node it reconnected to, not a node still draining that no longer
// answers.
func (d *Dispatcher) kick(m *nats.Msg, session string) {
	c := d.holder(session)
	if c == nil {
		return
	}
	b := d.laneOf(session).binding(session)
	closed := c.Revoke()
	if closed {
		d.kicks.Add(1)
		d.log.Info("session revoked", zap.String("session", session))
	}
	if m.Reply == "" {
		return
	}
	answer := protocol.KickResult{Node: d.node, Closed: closed}
	if !closed || b == nil {
		d.reply(m.Reply, answer)
		return
	}
	d.wg.Go(func() {
		t := time.NewTimer(kickSettle)
		defer t.Stop()
		select {
		case <-b.gone:
		case <-t.C: // a new connection of the session on this node keeps the subscription
		case <-d.stop:
		}
		d.reply(m.Reply, answer)
	})
}

// kickSettle bounds how long a kick's answer waits for the node to let go
// of the session's subscription.
const kickSettle = 2 * time.Second

// reply publishes v as JSON on subject.
func (d *Dispatcher) reply(subject string, v any) {
	body, _ := json.Marshal(v)
	d.replyBytes(subject, body)
}

// replyBytes publishes an answer's body on subject.
func (d *Dispatcher) replyBytes(subject string, body []byte) {
	if err := d.nc.Publish(subject, body); err != nil {
		d.log.Warn("session request reply failed", zap.String("subject", subject), zap.Error(err))
	}
}

// connect attaches c (attach) and, once it is, publishes its connected
// event. A connection attach refused is remembered until it closes, so
// that it gets no disconnected event either.
func (d *Dispatcher) connect(c *edge.Conn) error {
	if err := d.attach(c); err != nil {
		l := d.laneOf(c.Session())
		l.mu.Lock()
		if l.refused == nil {
			l.refused = make(map[*edge.Conn]struct{})
		}
		l.refused[c] = struct{}{}
		l.mu.Unlock()
		return err
	}
	d.event(c, protocol.EventConnected, "")
	return nil
}

// disconnect detaches c and then publishes its disconnected event, unless
// attach refused it. After the detach: the node's unsubscription reaches
// NATS before the event, so whoever hears the event and asks finds the
// session offline (or on its new node), not a node that no longer answers.
func (d *Dispatcher) disconnect(c *edge.Conn, reason wire.CloseReason, cause error) {
	d.detach(c, reason, cause)
	l := d.laneOf(c.Session())
	l.mu.Lock()
	_, refused := l.refused[c]
	delete(l.refused, c)
	l.mu.Unlock()
	if !refused {
		d.event(c, protocol.EventDisconnected, string(reason))
	}
}

// event publishes a session event for c: a plain publish, at most once
// (lost if NATS is away long enough for the client's buffer to fill).
func (d *Dispatcher) event(c *edge.Conn, kind, reason string) {
	i := c.Info()
	e := protocol.SessionEvent{Session: i.Session, Event: kind, Node: d.node, Since: i.Started, At: time.Now(),
		Transport: i.Transport, Remote: i.Remote, Groups: c.Groups(), Reason: reason}
	body, _ := json.Marshal(e)
	if err := d.nc.Publish(protocol.EventSubject(d.prefix, i.Session, kind), body); err != nil {
		d.eventsFailed.Add(1)
		d.log.Warn("session event not published", zap.String("session", i.Session), zap.String("event", kind), zap.Error(err))
		return
	}
	d.events[eventIndex(kind)].Add(1)
}

// eventIndex is the slot of kind in Dispatcher.events.
func eventIndex(kind string) int {
	if kind == protocol.EventConnected {
		return 0
	}
	return 1
}
