package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// groupTable is the node's side of group pushes: for each group with a
// local member, the one subscription to <prefix>.group.<group>.* and the
// members; every connection is a member of push.AllGroup, whose
// subscription is <prefix>.all.*. A subscription is made with a group's
// first local member and unsubscribed with its last. A connection's own
// list (edge.Conn.Groups) is changed only under mu, so the two agree.
type groupTable struct {
	mu     sync.RWMutex
	groups map[string]*group // guarded by mu; a group is here while it has a member
}

// group is one group's local members, in the order they joined (swapped
// on removal).
type group struct {
	sub     *nats.Subscription
	members []*edge.Conn
	index   map[*edge.Conn]int // position in members
}

func newGroupTable() *groupTable { return &groupTable{groups: make(map[string]*group)} }

// add makes c a member of name, subscribing when it is the group's first
// local member. The caller holds t.mu.
func (d *Dispatcher) addMember(t *groupTable, c *edge.Conn, name string) error {
	g := t.groups[name]
	if g == nil {
		l := d.laneOf(protocol.GroupLetterSession(name))
		sub, err := d.nc.ChanSubscribe(protocol.GroupWildcard(d.prefix, name), l.ch)
		if err != nil {
			return fmt.Errorf("subscribe to group %s: %w", name, err)
		}
		g = &group{sub: sub, index: make(map[*edge.Conn]int)}
		t.groups[name] = g
	}
	if _, ok := g.index[c]; !ok {
		g.index[c] = len(g.members)
		g.members = append(g.members, c)
	}
	return nil
}

// removeMember ends c's membership of name, draining the subscription
// with the group's last local member: what NATS already sent still
// arrives (an Unsubscribe would have nats.go discard it without a
// trace), and finds fewer members or none. The caller holds t.mu.
func (t *groupTable) removeMember(c *edge.Conn, name string) {
	g := t.groups[name]
	if g == nil {
		return
	}
	i, ok := g.index[c]
	if !ok {
		return
	}
	last := len(g.members) - 1
	g.members[i] = g.members[last]
	g.index[g.members[i]] = i
	g.members[last] = nil
	g.members = g.members[:last]
	delete(g.index, c)
	if len(g.members) == 0 {
		_ = g.sub.Drain()
		delete(t.groups, name)
	}
}

// attached reports whether c is a connection the table knows (a member of
// push.AllGroup). The caller holds t.mu.
func (t *groupTable) attached(c *edge.Conn) bool {
	g := t.groups[push.AllGroup]
	if g == nil {
		return false
	}
	_, ok := g.index[c]
	return ok
}

// joinGroups makes a connection that has just connected a member of its
// token's groups and of push.AllGroup. On error it is a member of none.
func (d *Dispatcher) joinGroups(c *edge.Conn) error {
	t := d.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	names := append(c.Groups(), push.AllGroup)
	for i, n := range names {
		if err := d.addMember(t, c, n); err != nil {
			for _, m := range names[:i] {
				t.removeMember(c, m)
			}
			return err
		}
	}
	return nil
}

// leaveGroups ends every membership of a connection that has ended.
func (d *Dispatcher) leaveGroups(c *edge.Conn) {
	t := d.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.attached(c) {
		return
	}
	for _, n := range append(c.Groups(), push.AllGroup) {
		t.removeMember(c, n)
	}
}

// errNotMember refuses a membership change for a connection that has
// ended.
var errNotMember = errors.New("the session's connection has ended")

// changeGroups applies a membership request to c and returns its groups
// after it. A name breaking the rule, too many groups, or a subscription
// NATS refused, and nothing changes.
func (d *Dispatcher) changeGroups(c *edge.Conn, join, leave []string) ([]string, error) {
	t := d.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.attached(c) {
		return nil, errNotMember
	}
	added, removed, err := c.ChangeGroups(join, leave)
	if err != nil {
		return c.Groups(), err
	}
	for i, n := range added {
		if err := d.addMember(t, c, n); err != nil {
			for _, m := range added[:i] {
				t.removeMember(c, m)
			}
			_, _, _ = c.ChangeGroups(removed, added) // as it was
			return c.Groups(), err
		}
	}
	for _, n := range removed {
		t.removeMember(c, n)
	}
	return c.Groups(), nil
}

// stopGroups drains every group's subscription; the connections have
// ended.
func (d *Dispatcher) stopGroups() {
	t := d.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	for n, g := range t.groups {
		_ = g.sub.Drain()
		delete(t.groups, n)
	}
}

// members is the number of local members of name now.
func (t *groupTable) members(name string) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if g := t.groups[name]; g != nil {
		return len(g.members)
	}
	return 0
}

// subscriptions is the number of group subscriptions held (the broadcast
// one included).
func (t *groupTable) subscriptions() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.groups)
}

// member answers a membership request for session (Push-Join, Push-Leave)
// if this node holds it, with the groups after the change, once the
// subscriptions it made are confirmed; it stays silent if it does not
// hold it (the holder answers, or no one: no responders). The change is
// made on the session's lane, so that requests published one after
// another apply in that order; the confirmation, a round trip, and the
// answer run on a goroutine of their own, which a request without a reply
// subject (no one to answer) does not get.
func (d *Dispatcher) member(m *nats.Msg, session string) {
	c := d.holder(session) // none here, or a newer connection elsewhere answers
	if c == nil {
		return
	}
	groups, err := d.changeGroups(c, protocol.SplitGroups(m.Header.Get(protocol.HeaderJoin)),
		protocol.SplitGroups(m.Header.Get(protocol.HeaderLeave)))
	if m.Reply == "" {
		if err != nil {
			d.log.Debug("membership request refused", zap.String("session", session), zap.Error(err))
		}
		return
	}
	if err != nil {
		d.answerMember(m, session, groups, err)
		return
	}
	d.wg.Go(func() {
		if err = d.nc.Flush(); err != nil {
			err = fmt.Errorf("confirm the subscriptions: %w", err)
		}
		d.answerMember(m, session, groups, err)
	})
}

// answerMember replies to a membership request, if it has a reply subject.
func (d *Dispatcher) answerMember(m *nats.Msg, session string, groups []string, err error) {
	r := protocol.MemberReply{Session: session, Node: d.node, Groups: groups}
	if r.Groups == nil {
		r.Groups = []string{}
	}
	if err != nil {
		r.Error = err.Error()
		d.log.Debug("membership request refused", zap.String("session", session), zap.Error(err))
	}
	if m.Reply != "" {
		_ = d.nc.PublishMsg(r.Msg(m.Reply))
	}
}

// groupPush queues a push for group to each local member as a push of its
// own: same id and payload bytes, a receipt of its own, so that each
// member's priority, fairness, rate and queue rules apply and what one
// member cannot take is dead-lettered for that member alone. A producer
// waiting hears the number of local members it was queued for. It runs on
// the lane's fan-out goroutine (fanLoop).
func (d *Dispatcher) groupPush(l *lane, m *nats.Msg, group string, p push.Priority) {
	if len(m.Header) > 0 { // no hand-overs of group pushes: nothing honours these
		delete(m.Header, protocol.HeaderReply)
		delete(m.Header, protocol.HeaderSession)
	}
	e, mode, err := groupEnvelope(m, &l.fan.ids)
	if err != nil {
		d.rejectGroupInvalid(m, group, p.String(), err)
		return
	}
	span := d.traceFanout(m, group, p, e.Frame.ID)
	if !e.Expires.IsZero() && !e.Expires.After(time.Now()) {
		d.rejectGroup(m, group, p.String(), push.ReasonExpired)
		endSpan(span, string(push.ReasonExpired))
		return
	}
	n, held := d.fanOut(l, m, &e, group, p)
	if !held {
		// The subscription outlived the group's last local member (or the
		// node is stopping): no one here to take it, as for a session's
		// push after its connection ended.
		d.rejectGroup(m, group, p.String(), push.ReasonClosed)
		endSpan(span, string(push.ReasonClosed))
		return
	}
	if span != nil {
		span.SetAttributes(attribute.Int("pushfabric.members", n))
		span.End()
	}
	if mode == protocol.AckEnqueued {
		d.sink.m.ack(protocol.StatusEnqueued)
		a := protocol.Ack{Status: protocol.StatusEnqueued, Node: d.node, ID: e.Frame.ID, Members: n}
		_ = d.nc.PublishMsg(a.Msg(m.Reply))
	}
}

// groupEnvelope is envelopeOf for a group push, which refuses the
// per-session acknowledgements written and received.
func groupEnvelope(m *nats.Msg, ids *idSource) (edge.Envelope, string, error) {
	e, mode, err := envelopeOf(m, ids)
	if err != nil {
		return e, mode, err
	}
	if v := m.Header.Get(protocol.HeaderAck); v == protocol.AckWritten || v == protocol.AckReceived {
		return e, mode, fmt.Errorf("%s %q: per session only, not on a group push", protocol.HeaderAck, v)
	}
	return e, mode, nil
}

// fanOut queues e to every local member of group and returns how many took
// it; held is false when the group has no local member (then nothing was
// done with e). Members are counted and served under one lock: a group
// whose last member leaves meanwhile is either served or not held. The
// envelope, its payload bytes included, is shared: each copy costs a
// receipt from the lane's block, no allocation of its own.
func (d *Dispatcher) fanOut(l *lane, m *nats.Msg, e *edge.Envelope, group string, p push.Priority) (n int, held bool) {
	t := d.groups
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := t.groups[group]
	if g == nil {
		return 0, false
	}
	for _, c := range g.members {
		e.Receipt = l.fan.copies.next(m, d, group)
		if err := c.TryPush(p, *e); err == nil {
			n++
		} else {
			d.copyRefused(c, e, p, err)
		}
	}
	d.memberCopies.Add(uint64(n))
	return n, true
}

// copyRefused dead-letters a member's copy TryPush refused without
// dead-lettering it. (Apart from fanOut, so that the error's target
// escapes only on this path.)
func (d *Dispatcher) copyRefused(c *edge.Conn, e *edge.Envelope, p push.Priority, err error) {
	var dle *edge.DeadLetteredError
	if !errors.As(err, &dle) {
		e.Receipt.Dead(edge.DeadLetter{Envelope: *e, Session: c.Session(), Priority: p, Reason: refusalReason(err)})
	}
}

// groupCopy is the receipt of a member's copy of a group push: written,
// its latency is counted; dead, it is dead-lettered as a push for the
// member's own session (its subject and Push-Subject) with Push-Group;
// moved with its session to another node, it is handed over as one.
type groupCopy struct {
	m     *nats.Msg // shared by the copies; never changed
	d     *Dispatcher
	group string
}

func (r *groupCopy) Written(e *edge.Envelope) {
	r.d.observeLatency(e)
	r.m = nil
}

func (r *groupCopy) Dead(dl edge.DeadLetter) {
	r.d.sink.write(dl.Session, dl.Priority.String(), dl.Reason, r.memberMsg(dl.Session, dl.Priority), &dl.Envelope)
	r.m = nil
}

func (r *groupCopy) Moved(session string, e *edge.Envelope) {
	m := r.memberMsg(session, e.Frame.Priority)
	stampID(m, e.Frame.ID)
	r.d.handOver(m, session, e.Frame.Priority.String(), "", push.ReasonReplaced)
	r.m = nil
}

// memberMsg is the copy as a push for session: its own subject, the
// original headers (copied: the message is shared) with Push-Group, and
// the payload.
func (r *groupCopy) memberMsg(session string, p push.Priority) *nats.Msg {
	h := make(nats.Header, len(r.m.Header)+2)
	for k, v := range r.m.Header {
		h[k] = slices.Clip(v)
	}
	h.Set(protocol.HeaderGroup, r.group)
	return &nats.Msg{Subject: protocol.PushSubject(r.d.prefix, session, p.String()), Header: h, Data: r.m.Data}
}

// groupCopies hands out the receipts of member copies for one lane's
// fan-out goroutine, a block at a time, as plainReceipts does.
type groupCopies struct {
	block []groupCopy
}

func (b *groupCopies) next(m *nats.Msg, d *Dispatcher, group string) *groupCopy {
	if len(b.block) == 0 {
		b.block = make([]groupCopy, receiptsPerBlock)
	}
	r := &b.block[0]
	b.block = b.block[1:]
	r.m, r.d, r.group = m, d, group
	return r
}

// groupAsk is a group presence request waiting to be answered.
type groupAsk struct {
	m     *nats.Msg
	group string
}

// groupAskBacklog bounds the group presence requests waiting for
// presenceLoop (each answered within the asker's window of a second or
// so, at a few ms per thousand members).
const groupAskBacklog = 1024

// askGroupPresence hands a group presence request to presenceLoop without
// waiting: it runs on the lane, whose pushes must not wait behind a
// marshal of every member (every connection of the node, for a
// broadcast). One without a reply subject is not answered; one that finds
// groupAskBacklog waiting is not answered either, and counted.
func (d *Dispatcher) askGroupPresence(m *nats.Msg, group string) {
	if m.Reply == "" {
		return
	}
	select {
	case d.groupAsks <- groupAsk{m: m, group: group}:
	default:
		d.presencesDropped.Add(1)
	}
}

// presenceLoop answers the group presence requests the lanes handed it,
// one at a time, until the dispatcher stops (those still waiting then are
// not answered: the node is leaving).
func (d *Dispatcher) presenceLoop() {
	for {
		select {
		case a := <-d.groupAsks:
			d.groupPresence(a.m, a.group)
		case <-d.stop:
			return
		}
	}
}

// groupPresence answers a presence request for a group this node has
// members of (<prefix>.group.<group>.presence): its local members, as
// presence describes each, in JSON lists that each fit in one NATS
// message (a node with thousands of members answers with several; the
// asker gathers them all). It runs on presenceLoop.
func (d *Dispatcher) groupPresence(m *nats.Msg, group string) {
	t := d.groups
	t.mu.RLock()
	var members []*edge.Conn
	if g := t.groups[group]; g != nil {
		members = slices.Clone(g.members)
	}
	t.mu.RUnlock()
	limit := int(d.nc.MaxPayload())
	list := []byte{'['}
	for _, c := range members {
		b, _ := json.Marshal(SessionInfo(d.node, c))
		if len(list) > 1 && len(list)+1+len(b)+1 > limit { // this one and "]" would not fit
			d.replyBytes(m.Reply, append(list, ']'))
			list = []byte{'['}
		}
		if len(list) > 1 {
			list = append(list, ',')
		}
		list = append(list, b...)
	}
	d.presences.Add(1)
	d.replyBytes(m.Reply, append(list, ']'))
}
