package bus

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// maxHandovers bounds the hand-overs a node waits to hear about. Past it a
// push is dead-lettered replaced at once (outcome unsent) rather than sent
// without anyone to learn whether it was taken.
const maxHandovers = 1 << 16

// Outcomes of hand-overs, the label values of pushfabric_handovers_total.
const (
	HandoverTaken        = "taken"         // the taking node answered enqueued: it holds the push now
	HandoverDead         = "dead"          // the taking node dead-lettered it (and said so)
	HandoverNoResponders = "no_responders" // no node holds the session: dead-lettered here (replaced; unconfirmed for a receipt-push)
	HandoverTimeout      = "timeout"       // no edge node answered in time: dead-lettered here likewise (it may have been taken after all)
	HandoverUnsent       = "unsent"        // not sent (NATS closed, too many waiting): dead-lettered here likewise
)

// HandoverOutcomes lists every outcome, for metrics.
var HandoverOutcomes = []string{HandoverTaken, HandoverDead, HandoverNoResponders, HandoverTimeout, HandoverUnsent}

// HandoverStats count hand-overs by outcome (HandoverOutcomes).
type HandoverStats map[string]uint64

// handovers hands pushes to the node that now holds their session
// (docs/pushing.md, "What is guaranteed"): each goes as a request from this node's own inbox to the session's
// subject, with the producer's reply subject in Push-Reply, and is settled
// by the answer — taken, or dead-lettered there — or, when no node
// answers (no responders, the timeout, not sent at all), dead-lettered
// replaced here, so that a push handed over is never unaccounted for. One
// wildcard subscription receives every answer; the table of hand-overs
// waiting is bounded, and swept for those past the timeout.
type handovers struct {
	nc       *nats.Conn
	inbox    string // reply subjects are inbox + sequence number (base 36)
	timeout  time.Duration
	sink     *Sink
	log      *zap.Logger
	sub      *nats.Subscription        // set by start, with nc
	counts   map[string]*atomic.Uint64 // by outcome; the map is never changed
	stopping chan struct{}             // closed by stop
	abort    chan struct{}             // closed by stop when its context ends: fail what waits at once
	done     chan struct{}             // closed when the sweeper has ended

	mu      sync.Mutex
	waiting map[uint64]*handover // guarded by mu, by sequence number
	next    uint64               // guarded by mu: the next sequence number
	oldest  uint64               // guarded by mu: nothing below it waits
}

// handover is one push sent to the session's new node, waiting for the
// answer. Deadlines grow with sequence numbers: they are set under the
// table's lock with one timeout.
type handover struct {
	m        *nats.Msg // as sent; its Reply is the producer's still-owed one ("" if none)
	session  string
	priority string
	failed   push.Reason // the dead-letter reason if no node takes it: replaced, or unconfirmed for a receipt-push
	deadline time.Time
}

// newHandovers builds the table of a node with this prefix; start
// subscribes to the answers and starts the sweeper, stop ends both.
func newHandovers(prefix string, timeout time.Duration, sink *Sink, log *zap.Logger) *handovers {
	h := &handovers{
		inbox: protocol.EdgeInboxPrefix(prefix) + nuid.Next() + ".", timeout: timeout, sink: sink, log: log,
		counts: map[string]*atomic.Uint64{}, stopping: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{}),
		waiting: map[uint64]*handover{},
	}
	for _, o := range HandoverOutcomes {
		h.counts[o] = &atomic.Uint64{}
	}
	return h
}

// start subscribes to the answers on nc and starts the sweeper.
func (h *handovers) start(nc *nats.Conn) error {
	sub, err := nc.Subscribe(h.inbox+"*", h.answer)
	if err != nil {
		return err
	}
	// The callback never blocks, and the table bounds what waits.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	h.nc, h.sub = nc, sub
	go h.sweep()
	return nil
}

// handoverMsg is the hand-over of push m: its subject, payload and headers,
// less those no node acts on from outside (Push-Reply, Push-Session,
// Nats-*), plus Push-Reply when the producer still waits for an ack on
// owed. m itself is not changed.
func handoverMsg(m *nats.Msg, owed string) *nats.Msg {
	h := make(nats.Header, len(m.Header)+1)
	for k, v := range m.Header {
		if k == protocol.HeaderReply || k == protocol.HeaderSession || protocol.IsNATSHeader(k) {
			continue
		}
		h[k] = v
	}
	if owed != "" {
		h.Set(protocol.HeaderReply, owed)
	}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

// send hands push m over; owed is the producer's reply subject when it
// still waits for an ack, "" otherwise; failed is the dead-letter reason
// if no node takes it. It never blocks.
func (h *handovers) send(m *nats.Msg, session, priority, owed string, failed push.Reason) {
	out := handoverMsg(m, owed)
	ho := &handover{m: &nats.Msg{Subject: out.Subject, Reply: owed, Header: m.Header, Data: m.Data}, session: session, priority: priority, failed: failed}
	h.mu.Lock()
	if len(h.waiting) >= maxHandovers {
		h.mu.Unlock()
		h.log.Warn("push not handed over: too many hand-overs wait for an answer", zap.String("session", session),
			zap.String("push_id", m.Header.Get(protocol.HeaderID)), zap.Int("waiting", maxHandovers))
		h.fail(ho, HandoverUnsent)
		return
	}
	seq := h.next
	h.next++
	ho.deadline = time.Now().Add(h.timeout)
	h.waiting[seq] = ho
	h.mu.Unlock()
	out.Reply = h.inbox + strconv.FormatUint(seq, 36)
	if err := h.nc.PublishMsg(out); err != nil {
		if h.take(seq) != nil {
			h.log.Warn("push not handed over", zap.String("session", session),
				zap.String("push_id", m.Header.Get(protocol.HeaderID)), zap.Error(err))
			h.fail(ho, HandoverUnsent)
		}
	}
}

// take removes and returns the hand-over seq, nil if it was settled.
func (h *handovers) take(seq uint64) *handover {
	h.mu.Lock()
	defer h.mu.Unlock()
	ho := h.waiting[seq]
	delete(h.waiting, seq)
	return ho
}

// answer runs on the subscription's goroutine for each answer to a
// hand-over, and never blocks. Something that is not an edge node's answer
// settles nothing: the timeout does.
func (h *handovers) answer(m *nats.Msg) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, h.inbox), 36, 64)
	if err != nil {
		return
	}
	if push.NoResponders(m.Header, m.Data) {
		if ho := h.take(seq); ho != nil {
			h.fail(ho, HandoverNoResponders)
		}
		return
	}
	a, err := protocol.ParseAck(m)
	if err != nil || a.Status == protocol.StatusWritten || a.Status == protocol.StatusReceived {
		h.log.Warn("hand-over answered by something that is not an edge node", zap.String("subject", m.Subject),
			zap.ByteString("answer", m.Data))
		return
	}
	if h.take(seq) == nil {
		return // settled by the timeout already: the push may now be both delivered and dead-lettered
	}
	if a.Status == protocol.StatusDead {
		h.count(HandoverDead)
		return
	}
	h.count(HandoverTaken)
}

// fail dead-letters a hand-over no node took (as replaced, or unconfirmed
// for a receipt-push), telling a producer that still waits.
func (h *handovers) fail(ho *handover, outcome string) {
	h.count(outcome)
	if ho.m.Reply != "" {
		h.sink.ack(ho.m, protocol.StatusDead, string(ho.failed), ho.m.Header.Get(protocol.HeaderID))
	}
	h.sink.write(ho.session, ho.priority, ho.failed, ho.m, nil)
}

func (h *handovers) count(outcome string) {
	h.counts[outcome].Add(1)
}

// sweep fails the hand-overs past their deadline, a few times per timeout.
// Once stopping, it ends when nothing waits any more (at most the timeout
// later: answers to what was sent last may still come); once aborted, it
// fails what waits at once and ends.
func (h *handovers) sweep() {
	defer close(h.done)
	t := time.NewTicker(max(h.timeout/4, time.Millisecond))
	defer t.Stop()
	stopping := h.stopping
	for {
		var late time.Duration // how far past its deadline a hand-over is failed
		select {
		case <-t.C:
		case <-stopping:
			stopping = nil
		case <-h.abort:
			late, stopping = h.timeout, nil // every deadline is within a timeout from now
		}
		if h.expire(time.Now().Add(late)) == 0 && stopping == nil {
			return
		}
	}
}

// expire fails every hand-over whose deadline is past, and returns how
// many still wait.
func (h *handovers) expire(now time.Time) int {
	var late []*handover
	h.mu.Lock()
	for ; h.oldest < h.next; h.oldest++ {
		ho, ok := h.waiting[h.oldest]
		if ok && ho.deadline.After(now) {
			break
		}
		if ok {
			delete(h.waiting, h.oldest)
			late = append(late, ho)
		}
	}
	left := len(h.waiting)
	h.mu.Unlock()
	for _, ho := range late {
		h.fail(ho, HandoverTimeout)
	}
	return left
}

// stop waits until every hand-over sent is settled, at most the timeout,
// then unsubscribes; if ctx ends first, what still waits is failed at once
// (outcome timeout) and ctx's error returned. Nothing may be sent once it
// is called. It must follow start.
func (h *handovers) stop(ctx context.Context) error {
	close(h.stopping)
	var err error
	select {
	case <-h.done:
	case <-ctx.Done():
		err = ctx.Err()
		close(h.abort)
		<-h.done
	}
	_ = h.sub.Unsubscribe()
	return err
}

// stats returns the counts by outcome.
// pending is how many hand-overs wait for an answer.
func (h *handovers) pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiting)
}

func (h *handovers) stats() HandoverStats {
	s := HandoverStats{}
	for o, c := range h.counts {
		s[o] = c.Load()
	}
	return s
}
