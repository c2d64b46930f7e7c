package bus

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/protocol"
)

// dropWatch counts the messages NATS drops before the node sees them: a
// subscription delivering into a full channel has nats.go discard the
// message (a slow consumer), so no dead letter can record it. nats.go
// reports only the first drop of an episode, through the connection's
// error callback; from then on dropWatch reads the subscription's Dropped
// count every dropSweep, adds what is new to the connection's counter and
// logs it with the session, many sessions a line ("pushes dropped by
// nats"), so that a flood makes a few lines and not one per session that
// the log's sampling would thin out.
//
// A subscription is forgotten once it is closed. The drops of its last
// sweep interval before it closes may go uncounted: nats.go keeps the
// count of a closed subscription to itself.
type dropWatch struct {
	prefix string
	log    *zap.Logger

	mu   sync.Mutex
	subs map[*nats.Subscription]*watched // guarded by mu

	// The connection now, and those lost since the last sweep, whose
	// server is asked why it closed them (a slow consumer?).
	nc       *nats.Conn     // set by start
	embedded *server.Server // set by start; nil when connected to URLs
	now      connID         // guarded by mu
	closed   []closedCheck  // guarded by mu

	dropped    atomic.Uint64 // messages dropped, for ConnStats
	serverSlow atomic.Uint64 // connections the server closed as slow consumers
	stop       chan struct{} // closed by close
	done       chan struct{} // closed by the sweeper as it returns
	closeOnce  sync.Once
}

// watched is what dropWatch knows of one subscription.
type watched struct {
	counted int  // Dropped at the last sweep; owned by the sweeper
	still   int  // sweeps in a row with nothing new; owned by the sweeper
	active  bool // read every sweep; guarded by dropWatch.mu
}

const (
	// dropSweep is how often watched subscriptions are read.
	dropSweep = 100 * time.Millisecond
	// dropIdle is how many sweeps with nothing new a subscription is read
	// for before it is set aside until its next episode; dropCheckClosed
	// is how many sweeps apart those set aside are checked for closure.
	dropIdle        = 50
	dropCheckClosed = 100
	// dropLogBatch is the most sessions one log line names.
	dropLogBatch = 1000
)

func newDropWatch(prefix string, log *zap.Logger) *dropWatch {
	return &dropWatch{prefix: prefix, log: log, subs: map[*nats.Subscription]*watched{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// watch keeps sub in view from now on: NATS has just dropped a message
// for it. It never blocks on the sweeper.
func (w *dropWatch) watch(sub *nats.Subscription) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws := w.subs[sub]; ws != nil {
		ws.active = true
		return
	}
	w.subs[sub] = &watched{active: true}
}

// start starts the sweeper on nc, connected to the embedded server s, or
// to URLs when s is nil.
func (w *dropWatch) start(nc *nats.Conn, s *server.Server) {
	w.nc, w.embedded = nc, s
	w.mu.Lock()
	w.now = connIDOf(nc)
	w.mu.Unlock()
	go w.run()
}

// run sweeps every dropSweep until close, then once more.
func (w *dropWatch) run() {
	defer close(w.done)
	t := time.NewTicker(dropSweep)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-t.C:
			w.sweep(n%dropCheckClosed == 0)
		case <-w.stop:
			w.sweep(true)
			return
		}
	}
}

// close stops the sweeper after a last sweep and waits for it, once.
func (w *dropWatch) close() {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
}

// sweep reads the active subscriptions (all of them when checkAll), counts
// and logs what they dropped since the last sweep, and forgets the closed.
func (w *dropWatch) sweep(checkAll bool) {
	w.checkClosed()
	var drops []drop
	total := 0
	for sub, ws := range w.snapshot(checkAll) {
		n, err := sub.Dropped()
		if err != nil { // closed
			w.forget(sub)
			continue
		}
		if n <= ws.counted {
			w.idle(ws)
			continue
		}
		w.busy(ws)
		drops = append(drops, drop{w.name(sub), n - ws.counted})
		total += n - ws.counted
		ws.counted = n
	}
	w.logDrops(drops)
	w.dropped.Add(uint64(total)) // after the log: what is counted has been said
}

// drop is what one subscription dropped in one sweep.
type drop struct {
	name string // the session, or the subject when it is not a session's
	n    int
}

// snapshot is the subscriptions to read now.
func (w *dropWatch) snapshot(all bool) map[*nats.Subscription]*watched {
	w.mu.Lock()
	defer w.mu.Unlock()
	subs := make(map[*nats.Subscription]*watched)
	for sub, ws := range w.subs {
		if all || ws.active {
			subs[sub] = ws
		}
	}
	return subs
}

// idle sets a subscription aside after dropIdle quiet sweeps: from then
// on it is read every dropCheckClosed sweeps, or at once when watch takes
// it up again, its count kept. (A subscription set aside mid-episode gets
// no new callback when it drops again; the slower sweep finds it.)
func (w *dropWatch) idle(ws *watched) {
	if ws.still++; ws.still == dropIdle {
		w.mu.Lock()
		ws.active = false
		w.mu.Unlock()
	}
}

// busy keeps a subscription that has just dropped in every sweep.
func (w *dropWatch) busy(ws *watched) {
	ws.still = 0
	w.mu.Lock()
	ws.active = true
	w.mu.Unlock()
}

func (w *dropWatch) forget(sub *nats.Subscription) {
	w.mu.Lock()
	delete(w.subs, sub)
	w.mu.Unlock()
}

// name is the session a subscription is for, or its subject when it is
// not a session's.
func (w *dropWatch) name(sub *nats.Subscription) string {
	if session, _, ok := protocol.ParseSubject(w.prefix, sub.Subject); ok {
		return session
	}
	return sub.Subject
}

// logDrops logs drops as "<session> <count>", dropLogBatch a line.
func (w *dropWatch) logDrops(drops []drop) {
	for len(drops) > 0 {
		batch := drops[:min(len(drops), dropLogBatch)]
		drops = drops[len(batch):]
		count, names := 0, make([]string, len(batch))
		for i, d := range batch {
			count += d.n
			names[i] = d.name + " " + strconv.Itoa(d.n)
		}
		w.log.Error("pushes dropped by nats", zap.Int("count", count), zap.Strings("sessions", names),
			zap.String("why", "this node read its subscriptions too slowly; no dead letter records these"))
	}
}
