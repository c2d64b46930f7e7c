package bus

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

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
	// gone is closed when the lane forgets the binding: its subscription
	// has closed, so the server no longer sends this node the session's
	// messages.
	gone     chan struct{}
	goneOnce sync.Once

	// While the session's parked pushes are redelivered, what arrives waits
	// here so that it goes out after them.
	mu      sync.Mutex
	holding bool        // guarded by mu
	held    []*nats.Msg // guarded by mu
}

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
		b = &binding{holding: d.parking != nil, gone: make(chan struct{})}
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
	if err := d.joinGroups(c); err != nil { // the close hook lets the subscription go
		return err
	}
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
	d.leaveGroups(c)
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
	b.goneOnce.Do(func() { close(b.gone) })
}

func (l *lane) binding(session string) *binding {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.bindings[session]
}
