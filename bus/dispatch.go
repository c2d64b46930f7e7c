package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/registry"
)

// Dispatcher connects the sessions held on this node to NATS. Each session
// gets one subscription, <prefix>.<session>.*, delivering into one of a few
// dispatch lanes (a channel and the goroutine reading it; a session always
// uses the same lane, so its pushes stay in order), which hands each push to
// the session's connection with TryPush, which never waits. No goroutine
// exists per subscription, and the dispatcher never blocks on a session:
// what does not fit is dead-lettered as queue_full. More than one lane lets
// dispatch keep up with NATS reads while the writers keep the cores busy.
type Dispatcher struct {
	nc     *nats.Conn
	prefix string
	node   string
	reg    *registry.Registry[edge.Conn]
	sink   *Sink
	log    *zap.Logger
	lanes  []*lane
	stop   chan struct{}  // closed by Stop
	done   sync.WaitGroup // the lanes' loops

	parking   *parking     // nil unless parked pushes are redelivered on connect
	tracer    trace.Tracer // nil: tracing off
	handovers *handovers
	edgeInbox string        // a push whose reply subject starts with it is a hand-over
	resyncs   chan struct{} // NATS reconnected: announce again (never closed; one waiting is enough)
	unlisten  func()        // stops the reconnect notifications

	wg sync.WaitGroup // goroutines waiting for a draining subscription to close

	dispatched, forwarded, invalid atomic.Uint64
}

// lane is one dispatch goroutine and the channel its sessions'
// subscriptions deliver into.
type lane struct {
	ch       chan *nats.Msg // never closed
	release  chan *binding  // a binding whose parked pushes are queued: let the held ones go
	removals chan removal   // bindings whose drained subscription has closed
	ids      idSource       // ids for pushes that came without one

	// The bindings of the lane's sessions: read on every push by the lane,
	// changed as sessions come and go.
	mu       sync.RWMutex
	bindings map[string]*binding // guarded by mu
}

// idSource makes push ids for one goroutine, in the NUID format (22
// characters of [0-9A-Za-z]: a random 12-character prefix and a 10-character
// sequence). A block of ids is one string and each id a slice of it, so an
// id costs no allocation of its own; a block stays in memory while any of
// its ids does.
type idSource struct {
	prefix string // random, from a new NUID
	seq    uint64
	block  string
}

const (
	idLen       = 22
	idSeqLen    = 10
	idsPerBlock = 128
	idDigits    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

func newIDSource() idSource { return idSource{prefix: nuid.New().Next()[:idLen-idSeqLen]} }

func (s *idSource) next() string {
	if len(s.block) < idLen {
		b := make([]byte, 0, idsPerBlock*idLen)
		for range idsPerBlock {
			b = append(b, s.prefix...)
			var seq [idSeqLen]byte
			for i, v := idSeqLen-1, s.seq; i >= 0; i, v = i-1, v/62 {
				seq[i] = idDigits[v%62]
			}
			b = append(b, seq[:]...)
			s.seq++
		}
		s.block = string(b)
	}
	id := s.block[:idLen]
	s.block = s.block[idLen:]
	return id
}

// binding is a session's subscription on this node.
type binding struct {
	sub *nats.Subscription
	// closing: the session left this node; the subscription drains (what
	// NATS already sent still arrives) and the binding goes when it closes.
	// Guarded by its lane's mu.
	closing bool
	// replaced: a newer connection on another node holds the session. Until
	// the local connection has gone, what arrives is forwarded to it.
	replaced atomic.Bool

	// While the session's parked pushes are redelivered, what arrives waits
	// here so that it goes out after them.
	mu      sync.Mutex
	holding bool        // guarded by mu
	held    []*nats.Msg // guarded by mu
}

// DispatcherStats count what the dispatcher did.
type DispatcherStats struct {
	Dispatched  uint64        // pushes handed to a connection (queued or dead-lettered by it)
	Forwarded   uint64        // pushes handed over to follow a session to another node
	Handovers   HandoverStats // those hand-overs settled, by outcome
	Waiting     int           // hand-overs waiting for an answer
	Invalid     uint64        // messages that were not valid pushes
	Sessions    int           // sessions subscribed
	DeadLetters uint64        // dead letters the node's sink handed to the writer (the edge's and the dispatcher's)
}

// NewDispatcher starts dispatching for the sessions in reg. Wire its
// Hooks into the edge server; call Stop after the server has shut down.
// It fails only if it cannot subscribe to its hand-over answers.
func NewDispatcher(c *Conn, reg *registry.Registry[edge.Conn], sink *Sink, log *zap.Logger) (*Dispatcher, error) {
	if log == nil {
		log = zap.NewNop()
	}
	h, err := newHandovers(c.NC, c.cfg.Prefix, c.cfg.HandoverTimeout, sink, log)
	if err != nil {
		return nil, fmt.Errorf("subscribe to hand-over answers: %w", err)
	}
	d := &Dispatcher{
		nc: c.NC, prefix: c.cfg.Prefix, node: c.cfg.Node, reg: reg, sink: sink, log: log,
		stop: make(chan struct{}), handovers: h, edgeInbox: protocol.EdgeInboxPrefix(c.cfg.Prefix),
		resyncs: make(chan struct{}, 1),
	}
	for range c.cfg.DispatchLanes {
		d.lanes = append(d.lanes, &lane{ch: make(chan *nats.Msg, c.cfg.DispatchBuffer), release: make(chan *binding, 64), removals: make(chan removal, 64), ids: newIDSource(),
			bindings: make(map[string]*binding)})
	}
	if c.cfg.RedeliverOffline {
		d.parking = newParking(c.NC, c.cfg.Prefix, log)
	}
	if c.cfg.TracerProvider != nil {
		d.tracer = c.cfg.TracerProvider.Tracer("github.com/pushfabric/pushfabric/bus")
	}
	for _, l := range d.lanes {
		d.done.Go(func() { d.loop(l) })
	}
	d.done.Go(d.resyncLoop)
	d.unlisten = c.events.listen(d.reconnected)
	return d, nil
}

// laneOf is the lane a session's pushes go through (FNV-1a of its name).
func (d *Dispatcher) laneOf(session string) *lane {
	h := uint32(2166136261)
	for i := range len(session) {
		h = (h ^ uint32(session[i])) * 16777619
	}
	return d.lanes[h%uint32(len(d.lanes))]
}

// Hooks are the edge hooks that bind sessions to NATS: subscribe and
// announce on connect, unsubscribe when the last local connection of a
// session ends, answer `written` acknowledgements.
func (d *Dispatcher) Hooks() edge.Hooks {
	return edge.Hooks{Admit: d.admit, OnConnect: d.attach, OnClose: d.detach, OnWritten: d.written}
}

// admit refuses a client while NATS is down, before its connection takes
// the session: a connection of the same session on this node stays (it
// may be the client's old one on a link that came back) instead of being
// replaced by one the node could not serve.
func (d *Dispatcher) admit(string) error {
	if !d.nc.IsConnected() {
		return ErrNotConnected
	}
	return nil
}

// Stats returns the counters so far.
func (d *Dispatcher) Stats() DispatcherStats {
	n := 0
	for _, l := range d.lanes {
		l.mu.RLock()
		n += len(l.bindings)
		l.mu.RUnlock()
	}
	return DispatcherStats{Dispatched: d.dispatched.Load(), Forwarded: d.forwarded.Load(), Handovers: d.handovers.stats(),
		Waiting: d.handovers.pending(), Invalid: d.invalid.Load(), Sessions: n, DeadLetters: d.sink.deadLetters.Load()}
}

// Stop ends dispatching: what is still in the channel is handled (nobody
// holds those sessions any more, so it is dead-lettered as closed), then
// the loop ends; hand-overs still waiting for an answer are settled (for at
// most the hand-over timeout) before it returns.
func (d *Dispatcher) Stop() {
	d.unlisten()
	for _, l := range d.lanes {
		l.mu.Lock()
		for s, b := range l.bindings {
			_ = b.sub.Drain()
			delete(l.bindings, s)
		}
		l.mu.Unlock()
	}
	if d.nc.IsConnected() {
		_ = d.nc.Flush() // what NATS sent before the unsubscriptions is in the channel
	}
	close(d.stop)
	d.done.Wait()
	d.wg.Wait()
	d.handovers.stop()
	if d.parking != nil {
		d.parking.stop()
	}
}

// ErrNotConnected refuses a client while the node's NATS connection is
// down: it could neither receive the session's pushes nor tell other nodes
// it holds the session (DESIGN §8). The client is closed with reason
// shutdown, and reconnects, to another node if it can.
var ErrNotConnected = errors.New("nats is not connected: the node takes no new clients")

// attach subscribes the session (unless a connection on this node already
// did), makes sure the server has the subscription before the client is
// welcomed, and announces the connection so older holders elsewhere let go.
// While NATS is down it refuses the connection.
func (d *Dispatcher) attach(c *edge.Conn) error {
	if err := d.admit(c.Session()); err != nil { // NATS went away since admit
		return err
	}
	l := d.laneOf(c.Session())
	l.mu.Lock()
	b := l.bindings[c.Session()]
	fresh := b == nil || b.closing
	if fresh {
		b = &binding{holding: d.parking != nil}
		sub, err := d.nc.ChanSubscribe(protocol.SessionWildcard(d.prefix, c.Session()), l.ch)
		if err != nil {
			l.mu.Unlock()
			return err
		}
		b.sub = sub
		l.bindings[c.Session()] = b
	}
	b.replaced.Store(false)
	l.mu.Unlock()
	if err := d.nc.Flush(); err != nil { // the close hook lets the subscription go
		return fmt.Errorf("confirm the subscription: %w", err)
	}
	d.announce(c)
	if fresh && d.parking != nil {
		d.parking.redeliver(c)
		select {
		case l.release <- b:
		case <-d.stop:
		}
	}
	return nil
}

// detach unsubscribes a session no connection on this node holds any
// more. It drains rather than unsubscribes: pushes NATS sent before it
// learned of the unsubscription still reach the channel — to be forwarded
// if the session moved to another node, dead-lettered otherwise — instead
// of vanishing in the client; the binding goes once the drain is done.
func (d *Dispatcher) detach(c *edge.Conn, _ wire.CloseReason, _ error) {
	session := c.Session()
	l := d.laneOf(session)
	l.mu.Lock()
	b := l.bindings[session]
	if b == nil || b.closing || d.reg.Get(session) != nil { // gone, going, or a newer local connection holds it
		l.mu.Unlock()
		return
	}
	b.closing = true
	l.mu.Unlock()
	b.mu.Lock()
	held := b.held
	b.held, b.holding = nil, false
	b.mu.Unlock()
	for _, m := range held { // nobody holds the session any more
		_, token, _ := protocol.ParseSubject(d.prefix, m.Subject)
		d.reject(m, session, token, push.ReasonClosed)
	}
	closed := b.sub.StatusChanged(nats.SubscriptionClosed)
	if err := b.sub.Drain(); err != nil {
		l.remove(session, b)
		return
	}
	d.wg.Go(func() {
		select {
		case <-closed:
		case <-d.stop:
			l.remove(session, b)
			return
		}
		// Pushes the subscription took in may still wait in the lane's
		// channel; the lane lets the binding go after them, so that they
		// are still forwarded if the session moved.
		select {
		case l.removals <- removal{session, b}:
		case <-d.stop:
			l.remove(session, b)
		}
	})
}

// removal asks a lane to forget a binding whose subscription has closed.
type removal struct {
	session string
	b       *binding
}

// remove forgets b, unless a newer binding took its place.
func (l *lane) remove(session string, b *binding) {
	l.mu.Lock()
	if l.bindings[session] == b {
		delete(l.bindings, session)
	}
	l.mu.Unlock()
}

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

func (d *Dispatcher) loop(l *lane) {
	for {
		select {
		case m := <-l.ch:
			d.dispatch(l, m)
			// Take what else is there without a full select each time.
			for range 256 {
				select {
				case m := <-l.ch:
					d.dispatch(l, m)
					continue
				default:
				}
				break
			}
		case b := <-l.release:
			d.releaseHeld(l, b)
		case r := <-l.removals:
			// Everything the closed subscription delivered is already in
			// the channel: dispatch it with the binding still there.
			for n := len(l.ch); n > 0; n-- {
				d.dispatch(l, <-l.ch)
			}
			l.remove(r.session, r.b)
		case <-d.stop:
			for {
				select {
				case m := <-l.ch:
					d.dispatch(l, m)
				default:
					return
				}
			}
		}
	}
}

// dispatch handles one message from a session subscription.
func (d *Dispatcher) dispatch(l *lane, m *nats.Msg) {
	session, token, ok := protocol.ParseSubject(d.prefix, m.Subject)
	switch {
	case !ok:
		d.invalid.Add(1)
		d.log.Error("message on an unexpected subject", zap.String("subject", m.Subject))
	case token == protocol.Control:
		d.control(m, session)
	default:
		if p, err := push.ParsePriority(token); err == nil {
			d.push(l, m, session, p)
			return
		}
		d.reject(m, session, token, push.ReasonInvalid)
	}
}

// push hands one push to the session's connection, and answers the node
// that handed it over, if it is a hand-over.
func (d *Dispatcher) push(l *lane, m *nats.Msg, session string, p push.Priority) {
	handing := d.intake(m)
	status, reason := d.deliver(l, m, session, p)
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
	}
	if len(m.Header) > 0 {
		delete(m.Header, protocol.HeaderReply)
		delete(m.Header, protocol.HeaderSession)
	}
	return handing
}

// deliver queues one push, or hands it over, or dead-letters it, and says
// which for a handing node: enqueued (this node took it) or dead with the
// reason.
func (d *Dispatcher) deliver(l *lane, m *nats.Msg, session string, p push.Priority) (string, push.Reason) {
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
	f, mode, err := frameOf(m, &l.ids)
	if err != nil {
		d.log.Debug("invalid push", zap.String("subject", m.Subject), zap.Error(err))
		d.reject(m, session, p.String(), push.ReasonInvalid)
		return protocol.StatusDead, push.ReasonInvalid
	}
	c := d.reg.Get(session)
	if c == nil {
		d.reject(m, session, p.String(), push.ReasonClosed)
		return protocol.StatusDead, push.ReasonClosed
	}
	d.dispatched.Add(1)
	f.Meta = d.traceDelivery(m, session, p, f.ID)
	if mode == protocol.AckWritten {
		if tm, ok := f.Meta.(*tracedMsg); ok {
			tm.ackWritten = true
		} else {
			f.Meta = &tracedMsg{Msg: m, ackWritten: true}
		}
	}
	if err = c.TryPush(p, f); err == nil {
		if _, span := msgOf(f.Meta); span != nil {
			span.AddEvent("enqueued")
		}
		if mode == protocol.AckEnqueued {
			d.sink.ack(m, protocol.StatusEnqueued, "", f.ID)
		}
		return protocol.StatusEnqueued, ""
	}
	return protocol.StatusDead, d.refused(m, session, p, mode, f.ID, err)
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
// dead-lettered it (and told a `written` waiter), or it is rejected here.
// It returns the dead-letter reason. (Apart from push, so that the error's
// target escapes only on this path.)
func (d *Dispatcher) refused(m *nats.Msg, session string, p push.Priority, mode, id string, err error) push.Reason {
	var dle *edge.DeadLetteredError
	if errors.As(err, &dle) {
		if mode == protocol.AckEnqueued {
			d.sink.ack(m, protocol.StatusDead, string(dle.Reason), id)
		}
		return dle.Reason
	}
	reason := refusalReason(err)
	d.reject(m, session, p.String(), reason)
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
func (d *Dispatcher) reject(m *nats.Msg, session, priority string, reason push.Reason) {
	if reason == push.ReasonInvalid {
		d.invalid.Add(1)
	}
	id := ensureID(m)
	if mode, err := protocol.AckMode(m.Header); err != nil || mode != protocol.AckNone {
		d.sink.ack(m, protocol.StatusDead, string(reason), id)
	}
	d.sink.write(session, priority, reason, m, nil)
}

// ensureID returns the push's id, giving it one (in its headers, so that
// it keeps it wherever it goes) if it had none.
func ensureID(m *nats.Msg) string {
	id := m.Header.Get(protocol.HeaderID)
	if id == "" {
		id = nuid.Next()
		stampID(m, id)
	}
	return id
}

// stampID puts the push id its frame was given into the message's headers,
// if they lack one, before the message goes anywhere else (a dead letter,
// another node).
func stampID(m *nats.Msg, id string) {
	if m.Header.Get(protocol.HeaderID) != "" {
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(protocol.HeaderID, id)
}

// frameOf reads a push from its message. The message keeps the push (its
// Meta) for acknowledgements, dead letters and forwarding. A push without an
// id gets one; it goes into the message's headers only if the message
// travels on (stampID), which most never do.
func frameOf(m *nats.Msg, ids *idSource) (edge.Frame, string, error) {
	id := m.Header.Get(protocol.HeaderID)
	if id == "" {
		id = ids.next()
	}
	f := edge.Frame{ID: id, ContentType: m.Header.Get(protocol.HeaderContentType), Payload: m.Data, Meta: m}
	mode, err := protocol.AckMode(m.Header)
	if err != nil {
		return f, "", err
	}
	if m.Reply == "" {
		mode = protocol.AckNone
	}
	if exp := m.Header.Get(protocol.HeaderExpires); exp != "" {
		if f.Expires, err = push.ParseTime(exp); err != nil {
			return f, "", err
		}
	}
	if sent := m.Header.Get(protocol.HeaderSentAt); sent != "" {
		f.Sent, _ = push.ParseTime(sent) // for the latency histogram only: a bad one is left out
	}
	return f, mode, nil
}

// written answers a producer that asked to hear when its push reached the
// client's socket, and removes a redelivered parked push from the stream.
func (d *Dispatcher) written(_ *edge.Conn, f *edge.Frame) {
	if p, ok := f.Meta.(*parked); ok {
		d.parking.delivered(p)
		return
	}
	if !f.Sent.IsZero() {
		d.sink.m.latency.Observe(time.Since(f.Sent).Seconds())
	}
	// The rest was decided at dispatch, while the message was in the CPU's
	// cache: by now a push may have waited behind thousands of others, and
	// reading its headers again would cost cache misses on every push.
	tm, ok := f.Meta.(*tracedMsg)
	if !ok {
		return
	}
	endSpan(tm.span, "")
	if tm.ackWritten {
		d.sink.ack(tm.Msg, protocol.StatusWritten, "", f.ID)
	}
}

func (l *lane) binding(session string) *binding {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.bindings[session]
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
