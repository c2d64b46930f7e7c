package bus

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Limits of redelivering parked pushes.
const (
	maxRedeliver  = 1000             // parked pushes read per connect
	maxHeld       = 4096             // new pushes held back meanwhile
	parkedTimeout = 5 * time.Second  // reading them
	deleteQueue   = 4096             // deletions waiting to be sent
	deleteTimeout = 10 * time.Second // one deletion
	maxWarned     = 4096             // refused dead letters remembered as logged
)

// parkedPush is the receipt of a push redelivered from the dead-letter
// stream (its sequence number there): written (or, a receipt-push, once
// the client confirms it), its dead letter is deleted; dead, or moved
// with its session to another node, its dead letter simply stays, for
// this node or the session's new one to redeliver.
type parkedPush struct {
	p       *parking
	seq     uint64
	confirm bool // a receipt-push: deleted when confirmed, not when written
}

var _ edge.Confirmable = (*parkedPush)(nil)

func (r *parkedPush) Written(*edge.Envelope) {
	if !r.confirm {
		r.p.delivered(r.seq)
	}
}
func (r *parkedPush) Confirmed(*edge.Envelope)     { r.p.delivered(r.seq) }
func (r *parkedPush) Dead(edge.DeadLetter)         {}
func (r *parkedPush) Moved(string, *edge.Envelope) {}

// parking redelivers a connecting session's parked dead letters: offline
// and unconfirmed.
type parking struct {
	prefix  string
	js      jetstream.JetStream // set by start
	log     *zap.Logger
	deletes chan uint64 // closed by stop
	done    chan struct{}

	mu     sync.Mutex
	store  *dlq.Store          // guarded by mu: opened on first use (the stream is made on start)
	warned map[uint64]struct{} // guarded by mu: refused dead letters logged already, by sequence; at most maxWarned
}

func newParking(prefix string, log *zap.Logger) *parking {
	return &parking{prefix: prefix, log: log,
		deletes: make(chan uint64, deleteQueue), done: make(chan struct{}), warned: map[uint64]struct{}{}}
}

// start reads and deletes parked pushes on nc from now on; stop ends it.
func (p *parking) start(nc *nats.Conn) {
	p.js, _ = jetstream.New(nc) // fails only for bad options
	go p.deleter()
}

func (p *parking) open(ctx context.Context) (*dlq.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.store == nil {
		s, err := dlq.Open(ctx, p.js, p.prefix)
		if err != nil {
			return nil, err
		}
		p.store = s
	}
	return p.store, nil
}

// parkedReasons are the reasons of the dead letters redelivered on
// connect, in the order they are read.
var parkedReasons = [...]push.Reason{push.ReasonOffline, push.ReasonUnconfirmed}

// redeliver queues c's parked pushes, offline ones then unconfirmed ones,
// each oldest first, up to maxRedeliver and what the queues take; the rest
// stay parked for the next connect.
func (p *parking) redeliver(c *edge.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), parkedTimeout)
	defer cancel()
	store, err := p.open(ctx)
	left := maxRedeliver
	for _, reason := range parkedReasons {
		if err != nil || left == 0 {
			break
		}
		err = store.Each(ctx, dlq.Filter{Reason: string(reason), Session: c.Session(), Limit: left}, func(e dlq.Entry) error {
			p.queue(c, e)
			left--
			return nil
		})
	}
	if err != nil {
		p.log.Warn("parked pushes not redelivered", zap.String("session", c.Session()), zap.Error(err))
	}
}

// queue queues one parked push for c, unless it cannot be delivered as it
// was sent: a dead letter replay refuses (dlq.Destination: one trimmed to
// fit the stream, say) is logged, once, and stays for an operator.
func (p *parking) queue(c *edge.Conn, e dlq.Entry) {
	if _, err := dlq.Destination(p.prefix, e); err != nil {
		p.refused(c.Session(), e, err)
		return
	}
	wants := e.Header.Get(protocol.HeaderAck) == protocol.AckReceived
	env := edge.Envelope{Frame: edge.Frame{ID: e.ID(), ContentType: e.Header.Get(protocol.HeaderContentType), Payload: e.Data, WantsReceipt: wants},
		Receipt: &parkedPush{p: p, seq: e.Seq, confirm: wants}}
	if exp := e.Header.Get(protocol.HeaderExpires); exp != "" {
		t, err := push.ParseTime(exp)
		if err != nil || !t.After(time.Now()) {
			return // expired, or never valid: it stays a dead letter
		}
		env.Expires = t
	}
	prio := push.High
	if e.Priority() == push.Low.String() {
		prio = push.Low
	}
	_ = c.TryPush(prio, env) // refused: it stays parked
}

// refused logs a parked push that is not redelivered, the first time this
// node meets its dead letter (after maxWarned of them, it starts over).
func (p *parking) refused(session string, e dlq.Entry, err error) {
	p.mu.Lock()
	_, seen := p.warned[e.Seq]
	if !seen {
		if len(p.warned) >= maxWarned {
			clear(p.warned)
		}
		p.warned[e.Seq] = struct{}{}
	}
	p.mu.Unlock()
	if !seen {
		p.log.Warn("parked push not redelivered: it stays in the dead-letter stream", zap.String("session", session),
			zap.String("push_id", e.ID()), zap.Uint64("seq", e.Seq), zap.Error(err))
	}
}

// delivered deletes the dead letter seq of a parked push that was written.
func (p *parking) delivered(seq uint64) {
	select {
	case p.deletes <- seq:
	default:
		p.log.Warn("redelivered push stays in the dead-letter stream: deletions are backed up", zap.Uint64("seq", seq))
	}
}

func (p *parking) deleter() {
	defer close(p.done)
	for seq := range p.deletes {
		ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
		store, err := p.open(ctx)
		if err == nil {
			err = store.Delete(ctx, seq)
		}
		cancel()
		if err != nil {
			p.log.Warn("redelivered push stays in the dead-letter stream", zap.Uint64("seq", seq), zap.Error(err))
		}
	}
}

func (p *parking) stop() {
	close(p.deletes)
	<-p.done
}

// hold keeps a push back while the session's parked pushes are being
// queued, reporting whether it took the push: held, or (with the reason)
// dead-lettered because too many wait.
func (d *Dispatcher) hold(b *binding, m *nats.Msg, session string, p push.Priority) (bool, push.Reason) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.holding {
		return false, ""
	}
	if len(b.held) >= maxHeld {
		d.reject(m, session, p.String(), push.ReasonQueueFull)
		return true, push.ReasonQueueFull
	}
	b.held = append(b.held, m)
	return true, ""
}

// releaseHeld dispatches, in order, what arrived for b's session while its
// parked pushes were queued. It runs on the dispatch loop, so nothing that
// arrives later overtakes them. (If the binding has gone meanwhile, they
// are dead-lettered, or follow the session, as any push would.)
func (d *Dispatcher) releaseHeld(l *lane, b *binding) {
	b.mu.Lock()
	held := b.held
	b.held, b.holding = nil, false
	b.mu.Unlock()
	for _, m := range held {
		d.dispatch(l, m)
	}
}
