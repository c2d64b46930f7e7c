package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
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
	conn   *Conn
	nc     *nats.Conn // set by Start
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
	edgeInbox string             // a push whose reply subject starts with it is a hand-over
	replies   protocol.ReplyRule // which reply subjects the node may answer on
	resyncs   chan struct{}      // NATS reconnected: announce again (never closed; one waiting is enough)
	unlisten  func()             // set by Start: stops the reconnect notifications
	started   bool               // set by Start, read by Stop (never concurrent with it)

	wg sync.WaitGroup // goroutines waiting for a draining subscription to close, membership requests

	groups                                    *groupTable
	groupPushes, memberCopies, groupOverflows atomic.Uint64

	// Group presence requests, waiting for presenceLoop: answering one
	// costs a marshal per member, which the lanes must not wait for.
	// Never closed.
	groupAsks chan groupAsk

	dispatched, forwarded, invalid atomic.Uint64
	presences, presencesDropped    atomic.Uint64
	kicks, eventsFailed            atomic.Uint64
	events                         [2]atomic.Uint64 // published: connected, disconnected
}

// lane is one dispatch goroutine and the channel its sessions'
// subscriptions deliver into.
type lane struct {
	ch       chan *nats.Msg // never closed
	release  chan *binding  // a binding whose parked pushes are queued: let the held ones go
	removals chan removal   // bindings whose drained subscription has closed
	ids      idSource       // ids for pushes that came without one
	receipts plainReceipts  // receipts of plain pushes
	fan      fanout         // the group pushes the lane admitted, on their way to the members

	// The bindings of the lane's sessions: read on every push by the lane,
	// changed as sessions come and go.
	mu       sync.RWMutex
	bindings map[string]*binding // guarded by mu
	// Connections whose attach failed, until they close: they get no
	// session events. Guarded by mu; nil until the first.
	refused map[*edge.Conn]struct{}
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
	// GroupPushes counts the group pushes and broadcasts that reached the
	// node, MemberCopies the copies of them queued to local members, and
	// GroupSubscriptions is the group subscriptions held now (one per
	// group with local members, and the broadcast one while the node holds
	// a connection).
	GroupPushes, MemberCopies uint64
	GroupSubscriptions        int
	// GroupOverflows counts the group pushes dead-lettered queue_full for
	// the group because the fan-out stage was over its budget, and
	// FanoutBacklog is the member copies admitted and not yet queued now.
	GroupOverflows uint64
	FanoutBacklog  int64
	Presences      uint64 // presence requests answered
	// PresencesDropped counts the group presence requests not answered
	// because groupAskBacklog of them were already waiting.
	PresencesDropped uint64
	Kicks            uint64 // connections closed revoked by a kick
	// Session events published, by event (connected, disconnected), and
	// those whose publish failed.
	Events       map[string]uint64
	EventsFailed uint64
}

// NewDispatcher builds the dispatcher of c's sessions in reg, dead-letters
// going to sink. It starts nothing: wire its Hooks into the edge server,
// Start it once c has started and before the server serves, and Stop it
// after the server has shut down.
func NewDispatcher(c *Conn, reg *registry.Registry[edge.Conn], sink *Sink, log *zap.Logger) (*Dispatcher, error) {
	if c == nil || reg == nil || sink == nil {
		return nil, errors.New("bus: a dispatcher needs a connection, a registry and a sink")
	}
	if log == nil {
		log = zap.NewNop()
	}
	id := c.Identity()
	d := &Dispatcher{
		conn: c, prefix: id.Prefix, node: id.Node, reg: reg, sink: sink, log: log,
		stop: make(chan struct{}), handovers: newHandovers(id.Prefix, c.cfg.HandoverTimeout, sink, log),
		edgeInbox: protocol.EdgeInboxPrefix(id.Prefix), replies: protocol.NewReplyRule(id.Prefix), resyncs: make(chan struct{}, 1), groups: newGroupTable(),
		groupAsks: make(chan groupAsk, groupAskBacklog),
	}
	for range c.cfg.DispatchLanes {
		d.lanes = append(d.lanes, &lane{ch: make(chan *nats.Msg, c.cfg.DispatchBuffer), release: make(chan *binding, 64), removals: make(chan removal, 64), ids: newIDSource(),
			fan: newFanout(c.cfg.FanoutBacklog), bindings: make(map[string]*binding)})
	}
	if c.cfg.RedeliverOffline {
		d.parking = newParking(id.Prefix, log)
	}
	if c.cfg.TracerProvider != nil {
		d.tracer = c.cfg.TracerProvider.Tracer("github.com/pushfabric/pushfabric/bus")
	}
	return d, nil
}

// Start subscribes to the node's hand-over answers and starts the dispatch
// lanes, the parked-push deleter and the loop that announces the sessions
// again after a reconnection. The connection must have started. It does
// not block; if it fails, nothing it started is left running. Call it once.
func (d *Dispatcher) Start(context.Context) error {
	nc := d.conn.NC
	if nc == nil {
		return errors.New("bus: start the connection before the dispatcher")
	}
	if err := d.handovers.start(nc); err != nil {
		return fmt.Errorf("subscribe to hand-over answers: %w", err)
	}
	d.nc = nc
	if d.parking != nil {
		d.parking.start(nc)
	}
	for _, l := range d.lanes {
		d.done.Go(func() {
			d.loop(l)
			close(l.fan.ch) // the lane admits no more: fanLoop ends once it has queued the rest
		})
		d.done.Go(func() { d.fanLoop(l) })
	}
	d.done.Go(d.resyncLoop)
	d.done.Go(d.presenceLoop)
	d.unlisten = d.conn.events.listen(d.reconnected)
	d.started = true
	return nil
}

// laneOf is the lane a session's pushes go through (FNV-1a of its name).
func (d *Dispatcher) laneOf(session string) *lane {
	h := uint32(2166136261)
	for i := range len(session) {
		h = (h ^ uint32(session[i])) * 16777619
	}
	return d.lanes[h%uint32(len(d.lanes))]
}

// Hooks are the edge hooks that bind sessions to NATS: subscribe,
// announce and publish the connected event on connect; publish the
// disconnected event, and unsubscribe when the last local connection of a
// session ends, on close.
func (d *Dispatcher) Hooks() edge.Hooks {
	return edge.Hooks{Admit: d.admit, OnConnect: d.connect, OnClose: d.disconnect}
}

// admit refuses a client while NATS is down, before its connection takes
// the session: a connection of the same session on this node stays (it
// may be the client's old one on a link that came back) instead of being
// replaced by one the node could not serve.
func (d *Dispatcher) admit(string) error {
	if d.nc == nil || !d.nc.IsConnected() { // nil: not started

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
		Waiting: d.handovers.pending(), Invalid: d.invalid.Load(), Sessions: n, DeadLetters: d.sink.deadLetters.Load(),
		GroupPushes: d.groupPushes.Load(), MemberCopies: d.memberCopies.Load(), GroupSubscriptions: d.groups.subscriptions(),
		GroupOverflows: d.groupOverflows.Load(), FanoutBacklog: d.fanoutBacklog(),
		Presences: d.presences.Load(), PresencesDropped: d.presencesDropped.Load(), Kicks: d.kicks.Load(), EventsFailed: d.eventsFailed.Load(),
		Events: map[string]uint64{protocol.EventConnected: d.events[0].Load(), protocol.EventDisconnected: d.events[1].Load()}}
}

// fanoutBacklog is the member copies waiting in the lanes' fan-out stages.
func (d *Dispatcher) fanoutBacklog() int64 {
	var n int64
	for _, l := range d.lanes {
		n += l.fan.backlog.Load()
	}
	return n
}

// Stop ends dispatching: what is still in the channel is handled (nobody
// holds those sessions any more, so it is dead-lettered as closed), then
// the loops end; hand-overs still waiting for an answer are settled (for at
// most the hand-over timeout) before it returns. If ctx ends first, those
// still waiting are dead-lettered replaced at once and ctx's error is
// returned. Stopping a dispatcher that never started does nothing.
func (d *Dispatcher) Stop(ctx context.Context) error {
	if !d.started {
		return nil
	}
	d.unlisten()
	for _, l := range d.lanes {
		l.mu.Lock()
		for s, b := range l.bindings {
			_ = b.sub.Drain()
			delete(l.bindings, s)
		}
		l.mu.Unlock()
	}
	d.stopGroups()
	if d.nc.IsConnected() {
		_ = d.nc.Flush() // what NATS sent before the unsubscriptions is in the channel
	}
	close(d.stop)
	d.done.Wait()
	d.wg.Wait()
	err := d.handovers.stop(ctx)
	if d.parking != nil {
		d.parking.stop()
	}
	return err
}

// ErrNotConnected refuses a client while the node's NATS connection is
// down: it could neither receive the session's pushes nor tell other nodes
// it holds the session (docs/running.md). The client is closed with reason
// shutdown, and reconnects, to another node if it can.
var ErrNotConnected = errors.New("nats is not connected: the node takes no new clients")

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
