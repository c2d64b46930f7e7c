// Package producer publishes pushes to pushfabric sessions over NATS. It
// needs nothing but a NATS connection: any backend service can push.
//
//	p, err := producer.New(nc, producer.Options{Name: "billing"}) // checks the options; starts nothing
//	err = p.Start(ctx)                                            // subscribes to its status inbox
//	defer p.Stop(ctx)                                             // writes the dead letters it holds
//	ack, err := p.Push(ctx, "alice", push.High, []byte("hello"))
//
// New only checks the options and builds the producer. Start subscribes
// to the producer's status inbox and starts the goroutines that write
// offline dead letters and forget pushes whose status window has passed;
// Push and Publish work only between Start and Stop. Stop waits for the
// pushes still in their window, writes the remaining dead letters and ends
// those goroutines; it never closes the NATS connection, which stays the
// caller's.
//
// Push waits for the edge node's acknowledgement. Publish is the fast path:
// it waits for nothing, yet a push for a session no node holds still ends up
// in the dead-letter stream as offline (docs/pushing.md): it is published with a
// reply subject in the producer's status inbox, NATS answers "no
// responders" within a round trip when nobody holds the session, and the
// producer writes the dead letter.
//
// The package imports nats.go, OpenTelemetry's trace API, zap, the NATS
// contract (protocol), the vocabulary (push) and dlq, which writes those
// dead letters; never edge, bus, fx or Prometheus, so a backend that pushes
// links nothing of the edge node (tests/imports_test.go).
package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/internal/strblock"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Options configure a Producer. The zero value works with the defaults.
type Options struct {
	Prefix string // subject prefix; default "push"
	Name   string // names the producer in offline dead letters (Push-Node); default "producer"
	// StatusWindow is how long Publish remembers a push at most to learn
	// that no one holds its session, when the producer's marks do not come
	// back sooner (see mark): a connection without echo. It counts only
	// while NATS is connected, and from a window after each reconnect.
	// Default 2s.
	StatusWindow time.Duration
	// GroupWindow is how long PushGroup gathers the acknowledgements of
	// the nodes holding a group's members; default 250ms.
	GroupWindow time.Duration
	// MaxTracked bounds the pushes remembered for that; past it a push is
	// published untracked (and counted): if its session is offline it is
	// lost, as with a plain NATS publish.
	MaxTracked int
	// Logger for dead-letter writes that fail; nil: none.
	Logger *zap.Logger
	// TracerProvider traces each push (a producer span whose context travels
	// in the traceparent header to the edge and into dead letters). Nil:
	// OpenTelemetry's global provider, which does nothing unless the program
	// set one (otel.SetTracerProvider, before or after New); until then
	// pushes cost nothing to trace.
	TracerProvider trace.TracerProvider
}

// ErrNotRunning refuses a push before Start or after Stop: its producer
// could not dead-letter it if its session were offline.
var ErrNotRunning = errors.New("producer: not running (push between Start and Stop)")

// ErrUnacknowledged: Push's ctx ended before any acknowledgement came. The
// push may have been delivered (or still be), or lost with a node that
// died; the caller may send it again with the same push id.
var ErrUnacknowledged = errors.New("producer: push unacknowledged")

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = protocol.DefaultPrefix
	}
	if o.Name == "" {
		o.Name = "producer"
	}
	if o.StatusWindow <= 0 {
		o.StatusWindow = 2 * time.Second
	}
	if o.GroupWindow <= 0 {
		o.GroupWindow = 250 * time.Millisecond
	}
	if o.MaxTracked <= 0 {
		o.MaxTracked = 100_000
	}
}

// Stats count what a Producer did.
type Stats struct {
	Published uint64 // pushes sent by Publish
	Offline   uint64 // pushes dead-lettered because no node held the session
	Untracked uint64 // Publish pushes sent while MaxTracked were remembered
	// Forged counts the answers and marks that came to the status inbox
	// and were not NATS's or the producer's own: a mark without the
	// producer's MAC, a "no responders" that names another push's subject
	// or none (from a server that names it). Each is ignored: none makes a
	// dead letter of a push delivered, or forgets one not yet answered.
	Forged uint64
}

// Producer publishes pushes. Its methods are safe for concurrent use.
type Producer struct {
	nc     *nats.Conn
	opts   Options
	tracer tracers
	dl     *dlq.Writer
	inbox  string
	sub    *nats.Subscription

	running                               atomic.Bool // between Start and Stop
	published, offline, untracked, forged atomic.Uint64

	mu      sync.Mutex
	tracked ring             // guarded by mu: pushes sent by Publish, until marked or their status window ends
	scratch scratch          // guarded by mu: the message a tracked push is built in
	epoch   time.Time        // the ring's clock: time.Since(epoch)
	strs    strblock.Block   // guarded by mu: the strings of tracked pushes' messages
	ids     strblock.IDs     // guarded by mu: their push ids
	stamps  strblock.Stamper // guarded by mu: their send times
	empty   chan struct{}    // guarded by mu: closed when nothing is tracked, for Stop

	markSubject string // in the status inbox: the producer's marks (see mark)
	// The expire goroutine's: the connection's reconnects so far, and when
	// it last came back (see expireUntil).
	reconnects uint64
	resumed    time.Time
	markKey    markKey // signs the marks: a mark without its MAC is not the producer's

	stop      chan struct{} // closed by Stop
	done      chan struct{} // closed when the expiry goroutine ends
	started   bool          // set by Start; Start and Stop are not called concurrently
	closeOnce sync.Once
	closeErr  error
}

// New checks opts and builds a Producer on nc; it starts nothing, and nc
// need not be connected yet. Start it before pushing; Stop it when done.
func New(nc *nats.Conn, opts Options) (*Producer, error) {
	if nc == nil {
		return nil, errors.New("producer: no NATS connection")
	}
	opts.defaults()
	if !push.ValidToken(opts.Prefix) {
		return nil, fmt.Errorf("producer: prefix %q must be one subject token", opts.Prefix)
	}
	w, err := dlq.NewWriter(push.Identity{Prefix: opts.Prefix, Node: opts.Name},
		dlq.WriterConfig{Buffer: 65536, InFlight: 1024, AckTimeout: 5 * time.Second}, opts.Logger)
	if err != nil {
		return nil, err
	}
	inbox := nc.NewInbox()
	p := &Producer{
		nc: nc, opts: opts, dl: w, inbox: inbox, markSubject: inbox + "." + markToken, markKey: newMarkKey(),
		tracer: tracers{provider: opts.TracerProvider},
		ids:    strblock.NewIDs(), strs: strblock.Block{Size: 16 << 10}, epoch: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	p.scratch.reset()
	return p, nil
}

// Start subscribes to the producer's status inbox and starts its
// goroutines (see the package doc). It does not wait for the server to
// confirm the subscription. Call it once; if it fails, nothing is left
// running.
func (p *Producer) Start(ctx context.Context) error {
	if p.started {
		return errors.New("producer: started already")
	}
	if err := p.dl.Start(ctx, p.nc); err != nil {
		return err
	}
	sub, err := p.nc.Subscribe(p.inbox+".*", p.onStatus)
	if err == nil {
		// One answer at most for each push tracked, and the marks: never a
		// slow consumer that would lose an offline push's answer.
		err = sub.SetPendingLimits(2*p.opts.MaxTracked+1024, -1)
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		_ = p.dl.Stop(ctx)
		return fmt.Errorf("status inbox: %w", err)
	}
	p.sub, p.started = sub, true
	p.reconnects = p.nc.Stats().Reconnects
	go p.expire()
	p.running.Store(true)
	return nil
}

// Option sets something on one push.
type Option func(*nats.Msg) error

// WithID sets the push id (default: a fresh unique id).
func WithID(id string) Option {
	return func(m *nats.Msg) error {
		if id == "" || len(id) > push.MaxFieldLen {
			return fmt.Errorf("push id of %d bytes: want 1 to %d", len(id), push.MaxFieldLen)
		}
		m.Header.Set(protocol.HeaderID, id)
		return nil
	}
}

// WithExpiry dead-letters the push as expired if it is not written by t.
func WithExpiry(t time.Time) Option {
	return func(m *nats.Msg) error {
		m.Header.Set(protocol.HeaderExpires, push.FormatTime(t))
		return nil
	}
}

// WithContentType passes the payload's content type to the client.
func WithContentType(ct string) Option {
	return func(m *nats.Msg) error {
		if len(ct) > push.MaxFieldLen {
			return fmt.Errorf("content type of %d bytes: at most %d", len(ct), push.MaxFieldLen)
		}
		m.Header.Set(protocol.HeaderContentType, ct)
		return nil
	}
}

// WithHeader sets another header (for example traceparent). It travels
// with the push into dead letters.
func WithHeader(key, value string) Option {
	return func(m *nats.Msg) error {
		m.Header.Set(key, value)
		return nil
	}
}

// WithAck asks Push for another acknowledgement: protocol.AckWritten waits
// until the push reached the client's socket; protocol.AckReceived until
// the client application confirmed it with a receipt (or the push is
// dead: its connection's receipt timeout passed, or it ended with no node
// to take the push, reason unconfirmed). With AckReceived, ctx should
// allow for the edge's receipt timeout.
func WithAck(mode string) Option {
	return func(m *nats.Msg) error {
		switch mode {
		case protocol.AckEnqueued, protocol.AckWritten, protocol.AckReceived:
		default:
			return fmt.Errorf("ack mode %q: want %s, %s or %s", mode, protocol.AckEnqueued, protocol.AckWritten, protocol.AckReceived)
		}
		m.Header.Set(protocol.HeaderAck, mode)
		return nil
	}
}

// msg builds the NATS message of a push, and starts its producer span (the
// caller ends it), whose context goes into the headers.
func (p *Producer) msg(ctx context.Context, session string, prio push.Priority, payload []byte, opts []Option) (*nats.Msg, trace.Span, error) {
	if err := push.CheckSession(session); err != nil { // all or group would address the group subjects
		return nil, nil, err
	}
	return p.build(ctx, protocol.PushSubject(p.opts.Prefix, session, prio.String()), attribute.String("pushfabric.session", session),
		prio, payload, opts)
}

// build is msg for a push to subject; target names its session or group
// on the span.
func (p *Producer) build(ctx context.Context, subject string, target attribute.KeyValue, prio push.Priority, payload []byte,
	opts []Option) (*nats.Msg, trace.Span, error) {
	if !prio.Valid() {
		return nil, nil, fmt.Errorf("%v: want high or low", prio)
	}
	m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: payload}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, nil, err
		}
	}
	if m.Header.Get(protocol.HeaderID) == "" {
		m.Header.Set(protocol.HeaderID, nuid.Next())
	}
	span := p.startSpan(ctx, m, target)
	m.Header.Set(protocol.HeaderSentAt, push.FormatTime(time.Now()))
	return m, span, nil
}

// Push publishes a push and waits for the node holding the session to
// acknowledge it: enqueued (the default), written or received (WithAck),
// or dead with a reason. If no node holds the session, the push is
// dead-lettered as offline and the ack says so. An error means the outcome
// is unknown or the push was refused as invalid: one wrapping
// ErrUnacknowledged when ctx ended first (the node holding the push may
// have died; it may have been delivered, so send it again with the same
// push id, WithID, and the client drops the repeat), or NATS being
// unreachable.
func (p *Producer) Push(ctx context.Context, session string, prio push.Priority, payload []byte, opts ...Option) (protocol.Ack, error) {
	if !p.running.Load() {
		return protocol.Ack{}, ErrNotRunning
	}
	m, span, err := p.msg(ctx, session, prio, payload, opts)
	if err != nil {
		return protocol.Ack{}, err
	}
	defer span.End()
	id := m.Header.Get(protocol.HeaderID)
	reply, err := p.nc.RequestMsgWithContext(ctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		span.SetAttributes(attribute.String("pushfabric.ack", protocol.StatusDead), attribute.String("pushfabric.dead_reason", string(push.ReasonOffline)))
		return p.park(m, session, prio), nil
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrUnacknowledged, err)
		}
		return protocol.Ack{}, fmt.Errorf("push %s to %s: %w", id, session, err)
	}
	ack, err := protocol.ParseAck(reply)
	span.SetAttributes(attribute.String("pushfabric.ack", ack.Status))
	return ack, err
}

// untrack forgets push seq on NATS's "no responders" m for it, returning
// what its dead letter needs if it was still tracked. An answer that
// cannot be NATS's for that push (answersPush) is counted forged and
// changes nothing.
func (p *Producer) untrack(seq uint64, m *nats.Msg) (dlq.Letter, bool) {
	version := p.nc.ConnectedServerVersion()
	p.mu.Lock()
	defer p.mu.Unlock()
	subject, ok := p.tracked.subject(seq)
	if !ok {
		return dlq.Letter{}, false
	}
	if !answersPush(m.Header, subject, version) {
		p.forged.Add(1)
		return dlq.Letter{}, false
	}
	l, ok := p.tracked.take(seq)
	p.signalEmptyLocked()
	return l, ok
}

func (p *Producer) signalEmptyLocked() {
	if p.tracked.live == 0 && p.empty != nil {
		close(p.empty)
		p.empty = nil
	}
}

// onStatus receives NATS's "no responders" for a tracked push, and the
// producer's marks (see mark).
func (p *Producer) onStatus(m *nats.Msg) {
	if m.Subject == p.markSubject {
		// A mark forged by another client of the inbox would have pushes
		// forgotten before NATS said nobody held their session.
		seq, ok := p.markKey.parse(m.Data)
		if !ok {
			p.forged.Add(1)
			return
		}
		p.mu.Lock()
		p.tracked.release(seq)
		p.signalEmptyLocked()
		p.mu.Unlock()
		return
	}
	if !push.NoResponders(m.Header, m.Data) {
		return
	}
	seq, err := strconv.ParseUint(m.Subject[len(p.inbox)+1:], 36, 64)
	if err != nil {
		return
	}
	if l, ok := p.untrack(seq, m); ok {
		p.offline.Add(1)
		p.dl.Write(l)
	}
}

// expire marks the pushes sent (see mark) every markInterval, and forgets
// tracked pushes whose status window has passed: somebody held their
// session, or the marks do not come back.
func (p *Producer) expire() {
	defer close(p.done)
	tick := time.NewTicker(min(markInterval, p.opts.StatusWindow/4))
	defer tick.Stop()
	var marked uint64
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			marked = p.mark(marked)
			p.expireUntil(now)
		}
	}
}

// markInterval is how often the producer marks the pushes it sent.
const markInterval = 10 * time.Millisecond

// mark publishes to the producer's own status inbox the sequence number of
// the last push sent, if it sent any since the last mark. The server of
// the producer's connection answers a push nobody subscribes to with "no
// responders" as it takes the push in, on the producer's connection, and
// takes in the mark after it: when the mark comes back, every push up to
// it that NATS found no responder for has had its answer, and the others
// are forgotten. A connection without echo never gets its marks, and its
// pushes are forgotten when their status window ends.
func (p *Producer) mark(marked uint64) uint64 {
	if p.nc.Opts.NoEcho {
		return marked
	}
	p.mu.Lock()
	head := p.tracked.head
	p.mu.Unlock()
	if head == marked {
		return marked
	}
	if err := p.nc.Publish(p.markSubject, p.markKey.mark(head)); err != nil {
		return marked
	}
	return head
}

// expireUntil forgets the pushes whose status window ended by now, unless
// NATS is away or came back less than a window ago: a push waiting in
// nats.go's reconnect buffer, or just out of it, may yet be answered "no
// responders", however long ago it was published.
func (p *Producer) expireUntil(now time.Time) {
	if !p.nc.IsConnected() {
		return
	}
	if n := p.nc.Stats().Reconnects; n != p.reconnects {
		p.reconnects, p.resumed = n, now
	}
	if now.Sub(p.resumed) < p.opts.StatusWindow {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tracked.expire(now.Sub(p.epoch))
	p.signalEmptyLocked()
}

// park writes m, which no node held the session of, as an offline dead
// letter for session (the dead-letter session token: a group's is
// protocol.GroupLetterSession) and returns the ack that says so.
func (p *Producer) park(m *nats.Msg, session string, prio push.Priority) protocol.Ack {
	p.offline.Add(1)
	// The payload is copied: the caller may reuse it once Push returns.
	p.dl.Write(dlq.Letter{Subject: m.Subject, Session: session, Priority: prio.String(), Reason: push.ReasonOffline, Header: m.Header,
		Data: append([]byte(nil), m.Data...)})
	return protocol.Ack{Status: protocol.StatusDead, Reason: string(push.ReasonOffline), Node: p.opts.Name, ID: m.Header.Get(protocol.HeaderID)}
}

// Stats returns the counters so far.
func (p *Producer) Stats() Stats {
	return Stats{Published: p.published.Load(), Offline: p.offline.Load(), Untracked: p.untracked.Load(), Forged: p.forged.Load()}
}

// Stop takes no more pushes, waits until every push sent by Publish is
// known delivered or dead-lettered (at most the status window), writes the
// remaining dead letters, and stops the producer's goroutines, all within
// ctx. It does not close the NATS connection. Calling it again returns the
// first call's result; a producer never started stops at once.
func (p *Producer) Stop(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Producer) close(ctx context.Context) error {
	p.running.Store(false)
	if !p.started {
		return p.dl.Stop(ctx)
	}
	p.mu.Lock()
	var empty chan struct{}
	if p.tracked.live > 0 {
		empty = make(chan struct{})
		p.empty = empty
	}
	p.mu.Unlock()
	var err error
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	close(p.stop)
	<-p.done
	_ = p.sub.Unsubscribe()
	return errors.Join(err, p.dl.Stop(ctx))
}
