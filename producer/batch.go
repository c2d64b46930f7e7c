package producer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Message is one push of a batch.
type Message struct {
	Session  string
	Priority push.Priority
	Payload  []byte
	Options  []Option // WithAck, WithID, …: each push its own
}

// Result is what became of one push of a batch: its acknowledgement, as
// Push returns it, or the error Push would have returned.
type Result struct {
	Ack protocol.Ack
	// Err: the push was refused (invalid; nothing sent), could not be
	// sent, or was not acknowledged before ctx ended (wrapping
	// ErrUnacknowledged; send it again with the same push id).
	Err error
}

// PublishBatch sends many pushes at once and gathers what the nodes
// holding their sessions answered, each as Push would (enqueued by
// default, written or received with WithAck, dead with a reason; offline,
// and dead-lettered as such, when no node holds the session). The pushes
// are published one after another with one flush, and every answer comes
// back to one subscription: a fan-out of a job to many sessions costs one
// round trip, not one a push. It returns when every push is answered or
// ctx ends or the connection closes for good (the pushes unanswered then
// are unacknowledged: they may have been delivered); results[i] is
// msgs[i]'s. Pushes refused as invalid are not sent, the others are.
func (p *Producer) PublishBatch(ctx context.Context, msgs []Message) []Result {
	results := make([]Result, len(msgs))
	if !p.running.Load() {
		for i := range results {
			results[i].Err = ErrNotRunning
		}
		return results
	}
	b := &batch{p: p, msgs: msgs, results: results, answered: make(chan struct{}, 1), closed: make(chan struct{})}
	inbox := p.nc.NewInbox()
	sub, err := p.nc.Subscribe(inbox+".*", b.onReply)
	if err != nil {
		for i := range results {
			results[i].Err = fmt.Errorf("batch inbox: %w", err)
		}
		return results
	}
	var closeOnce sync.Once
	sub.SetClosedHandler(func(string) { closeOnce.Do(func() { close(b.closed) }) })
	defer func() { _ = sub.Unsubscribe() }()
	b.sent = make([]*nats.Msg, len(msgs))
	spans := make([]trace.Span, 0, len(msgs))
	defer func() {
		for _, s := range spans {
			s.End()
		}
	}()
	b.mu.Lock()
	for i, bm := range msgs {
		m, span, err := p.msg(ctx, bm.Session, bm.Priority, bm.Payload, bm.Options)
		if err != nil {
			results[i].Err = err
			continue
		}
		spans = append(spans, span)
		m.Reply = inbox + "." + strconv.Itoa(i)
		if err := p.nc.PublishMsg(m); err != nil {
			results[i].Err = fmt.Errorf("push %s to %s: %w", m.Header.Get(protocol.HeaderID), bm.Session, err)
			continue
		}
		b.sent[i] = m
		b.waiting++
	}
	b.mu.Unlock()
	b.flush(ctx)
	b.wait(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = nil // late answers change nothing
	return results
}

// flush sends what is buffered and waits for the server to have it, when
// ctx has a deadline (nats.go's flush wants one; without, its flusher
// sends the pushes all the same). A flush that fails does not say the
// pushes were not sent: while NATS reconnects they wait in nats.go's
// buffer and are answered once it is back, so the batch waits on; only
// a connection closed for good ends it, each push unacknowledged.
func (b *batch) flush(ctx context.Context) {
	if _, ok := ctx.Deadline(); !ok {
		return
	}
	if err := b.p.nc.FlushWithContext(ctx); err != nil && ctx.Err() == nil && b.p.nc.IsClosed() {
		b.fail(fmt.Errorf("%w: flush: %w", ErrUnacknowledged, err))
	}
}

// wait waits until every push sent is answered, ctx ends or the
// connection closes (the answers' subscription with it); the pushes left
// unanswered then are unacknowledged.
func (b *batch) wait(ctx context.Context) {
	for b.left() > 0 {
		select {
		case <-b.answered:
		case <-ctx.Done():
			b.fail(fmt.Errorf("%w: %w", ErrUnacknowledged, ctx.Err()))
			return
		case <-b.closed:
			b.fail(fmt.Errorf("%w: %w", ErrUnacknowledged, nats.ErrConnectionClosed))
			return
		}
	}
}

// left is how many pushes sent await their answer.
func (b *batch) left() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

// batch gathers the answers of one PublishBatch.
type batch struct {
	p        *Producer
	msgs     []Message
	mu       sync.Mutex
	results  []Result      // guarded by mu
	sent     []*nats.Msg   // guarded by mu: the pushes sent and not yet answered, by index; nil once PublishBatch returned
	waiting  int           // guarded by mu
	answered chan struct{} // capacity 1: an answer came
	closed   chan struct{} // closed when the answers' subscription is (the connection closed, or the batch done)
}

func (b *batch) onReply(m *nats.Msg) {
	i, err := strconv.Atoi(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
	if err != nil {
		return
	}
	version := b.p.nc.ConnectedServerVersion()
	b.mu.Lock()
	defer b.mu.Unlock()
	if i < 0 || i >= len(b.sent) || b.sent[i] == nil || b.results[i].Ack.Status != "" || b.results[i].Err != nil {
		return
	}
	r := &b.results[i]
	noResponders := push.NoResponders(m.Header, m.Data)
	if noResponders && !answersPush(m.Header, b.sent[i].Subject, version) {
		b.p.forged.Add(1) // not NATS's: the push was not found offline
		return
	}
	if noResponders {
		r.Ack = b.p.park(b.sent[i], b.msgs[i].Session, b.msgs[i].Priority) // as Push does
	} else if r.Ack, r.Err = protocol.ParseAck(m); r.Err != nil {
		r.Err = fmt.Errorf("push %s: %w", b.sent[i].Header.Get(protocol.HeaderID), r.Err)
	}
	b.waiting--
	select {
	case b.answered <- struct{}{}:
	default:
	}
}

// fail gives every push still unanswered err.
func (b *batch) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.sent {
		if m != nil && b.results[i].Ack.Status == "" && b.results[i].Err == nil {
			b.results[i].Err = fmt.Errorf("push %s: %w", m.Header.Get(protocol.HeaderID), err)
			b.waiting--
		}
	}
}
