package bus

import (
	"sync"

	"go.uber.org/zap"
)

// connEvents passes the connection's reconnections on to those who listen.
type connEvents struct {
	mu        sync.Mutex
	listeners map[*func()]struct{} // guarded by mu
}

// listen calls f, on the connection's callback goroutine, after each
// reconnection (the subscriptions are back on the server by then); f must
// not block. The returned func stops it.
func (e *connEvents) listen(f func()) (stop func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listeners == nil {
		e.listeners = map[*func()]struct{}{}
	}
	e.listeners[&f] = struct{}{}
	return func() {
		e.mu.Lock()
		delete(e.listeners, &f)
		e.mu.Unlock()
	}
}

// reconnected tells every listener.
func (e *connEvents) reconnected() {
	e.mu.Lock()
	fs := make([]func(), 0, len(e.listeners))
	for f := range e.listeners {
		fs = append(fs, *f)
	}
	e.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// reconnected runs on the connection's callback goroutine: it asks the
// resync loop to run, without waiting.
func (d *Dispatcher) reconnected() {
	select {
	case d.resyncs <- struct{}{}:
	default: // one is pending: it sees this reconnection too
	}
}

func (d *Dispatcher) resyncLoop() {
	for {
		select {
		case <-d.resyncs:
			d.resync()
		case <-d.stop:
			return
		}
	}
}

// resync runs after NATS came back (docs/running.md). While the node was away it
// missed takeover announcements and its sessions' pushes found no
// subscriber (the producer client parked them as offline). So every
// session it holds is announced again with its connection's original
// start time — the newest connection still wins, wherever it is — and,
// with redelivery on, its parked pushes are queued, with what arrives
// meanwhile held back behind them, as on connect. Sessions go one at a
// time, so JetStream sees one reader per node.
func (d *Dispatcher) resync() {
	d.log.Info("nats is back: announcing the sessions held here again")
	n := 0
	for _, l := range d.lanes {
		for _, session := range l.sessions() {
			select {
			case <-d.stop:
				return
			default:
			}
			if d.resyncSession(l, session) {
				n++
			}
		}
	}
	d.log.Info("sessions announced again", zap.Int("sessions", n))
}

// resyncSession announces one session again and redelivers its parked
// pushes, reporting whether it still held the session.
func (d *Dispatcher) resyncSession(l *lane, session string) bool {
	b, c := l.binding(session), d.reg.Get(session)
	if b == nil || c == nil || b.replaced.Load() {
		return false
	}
	d.announce(c)
	if d.parking == nil || !b.startHolding() {
		return true // or a connect is redelivering them already
	}
	d.parking.redeliver(c)
	select {
	case l.release <- b:
	case <-d.stop:
	}
	return true
}

// sessions lists the sessions the lane has a live binding for.
func (l *lane) sessions() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]string, 0, len(l.bindings))
	for s, b := range l.bindings {
		if !b.closing {
			out = append(out, s)
		}
	}
	return out
}

// startHolding makes new pushes wait while parked ones are queued, unless
// they wait already; it reports whether it did.
func (b *binding) startHolding() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holding {
		return false
	}
	b.holding = true
	return true
}
