package dlq

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// WriterConfig tunes a Writer. The prefix of the subjects it writes to and
// the node named in Push-Node are the push.Identity [NewWriter] takes.
type WriterConfig struct {
	// Buffer bounds dead letters waiting to be written, retries included.
	// When it is full a dead letter is logged with its push id and counted
	// as lost.
	Buffer int
	// InFlight bounds writes waiting for JetStream's acknowledgement.
	InFlight int
	// AckTimeout is how long a write waits for its acknowledgement before
	// it is retried.
	AckTimeout time.Duration
	// RetryFor is how long a dead letter whose writes keep failing for a
	// reason that may pass (no acknowledgement, JetStream or the stream
	// away, a reconnect) is retried, with backoff, before it is logged and
	// counted lost; 0 means DefaultRetryFor. A letter the stream refuses
	// for good (see Writer) is not retried at all.
	RetryFor time.Duration
	// Ensure, when set, is called (at most once a second) when a write finds
	// no stream to take it — the stream was deleted, or JetStream lost it —
	// to create it again.
	Ensure func(context.Context) error
}

// DefaultRetryFor is the stream's dedupe window: a retry within it of a
// write that did land after all (its acknowledgement lost) is absorbed.
const DefaultRetryFor = dedupeWindow

// DefaultWriterConfig buffers 65,536 dead letters with 1,024 in flight, and
// retries a failing one for DefaultRetryFor.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{Buffer: 65536, InFlight: 1024, AckTimeout: 5 * time.Second, RetryFor: DefaultRetryFor}
}

// Validate reports every field out of range.
func (c WriterConfig) Validate() error {
	var errs []error
	errs = check.Positive(errs, "Buffer", c.Buffer)
	errs = check.Positive(errs, "InFlight", c.InFlight)
	errs = check.Positive(errs, "AckTimeout", c.AckTimeout)
	errs = check.NotNegative(errs, "RetryFor", c.RetryFor)
	return errors.Join(errs...)
}

// WriterStats count what a Writer did.
type WriterStats struct {
	Written uint64 // acknowledged by the stream
	Retried uint64 // writes that failed for a reason that may pass, and were queued again
	Trimmed uint64 // dead letters that lost their payload or headers to fit the stream
	Lost    uint64 // dead letters not written, for any reason
	// LostBy splits Lost by reason; every reason is present.
	LostBy map[LostReason]uint64
}

// LostReason says why a dead letter was not written.
type LostReason string

// Why dead letters are lost.
const (
	LostBufferFull LostReason = "buffer_full" // the buffer was full
	LostRefused    LostReason = "refused"     // the stream refused it for good, or it cannot fit
	LostGaveUp     LostReason = "gave_up"     // its writes kept failing for RetryFor
	LostShutdown   LostReason = "shutdown"    // the writer stopped before it was written
)

// LostReasons lists every LostReason, for pre-initialising metrics.
var LostReasons = []LostReason{LostBufferFull, LostRefused, LostGaveUp, LostShutdown}

// lostWhy is the "why" of a lost letter in the log.
var lostWhy = map[LostReason]string{
	LostBufferFull: "dead-letter buffer full",
	LostRefused:    "refused by the dead-letter stream",
	LostGaveUp:     "not written within the retry time",
	LostShutdown:   "shutting down before it could be written",
}

// Writer writes dead letters to the stream asynchronously. Write never
// blocks and does a small, fixed amount of work whatever the letter: it
// only hands the letter to the writer's goroutine through a bounded buffer,
// and that goroutine builds each letter's message, trims it to fit (see
// Letter.Msg) and publishes it, with a bounded number in flight. A letter the stream refuses for good (a bad request: too
// large for the stream, headers it rejects) is logged and counted lost at
// once; one whose write fails otherwise goes to a retry list and is tried
// again after a backoff of its own (10 ms doubling to 1 s) until it is
// written or has failed for RetryFor, so no letter holds up the others and
// none is retried forever. Every letter not written is counted, by
// LostReason, and logged with its push id (in batches, see lostLog).
type Writer struct {
	id  push.Identity
	cfg WriterConfig
	nc  *nats.Conn          // set by Start
	js  jetstream.JetStream // set by Start
	log *zap.Logger

	written, retried, trimmed atomic.Uint64
	lost                      map[LostReason]*atomic.Uint64 // read-only once built
	lostLog                   lostLog

	mu       sync.Mutex
	queue    []*queued            // guarded by mu: a ring of Buffer fresh letters, not built yet
	head, n  int                  // guarded by mu
	retries  retryQueue           // guarded by mu: failed letters waiting for their next try, soonest first
	failing  map[*nats.Msg]*retry // guarded by mu: letters that failed, until written or lost
	inFlight int                  // guarded by mu: letters published whose outcome is not handled yet
	started  bool                 // guarded by mu: Start was called
	closing  bool                 // guarded by mu: Stop was called
	stopped  bool                 // guarded by mu: nothing more is written (the loop ended or Stop gave up)

	wake  chan struct{} // capacity 1: a letter or an outcome arrived, or Stop was called; never closed
	abort chan struct{} // closed by Stop when its context ends
	done  chan struct{} // closed when the write loop has ended

	missing  atomic.Bool  // a write found no stream; set by settle, cleared by the loop
	ensuring atomic.Int64 // unix nanos of the last Ensure call; owned by the loop
}

// NewWriter checks cfg and builds the writer of node id's dead letters
// (id.Node goes into Push-Node unless a letter names its node; it may be
// empty). It starts nothing: letters written before Start wait in the
// buffer; Stop ends it.
func NewWriter(id push.Identity, cfg WriterConfig, log *zap.Logger) (*Writer, error) {
	if !push.ValidToken(id.Prefix) {
		return nil, fmt.Errorf("dlq writer: prefix %q must be one subject token", id.Prefix)
	}
	if err := cfg.Validate(); err != nil {
		return nil, check.In("dlq.WriterConfig", err)
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Writer{
		id: id, cfg: cfg, log: log, queue: make([]*queued, cfg.Buffer),
		lost: map[LostReason]*atomic.Uint64{}, failing: map[*nats.Msg]*retry{},
		wake: make(chan struct{}, 1), abort: make(chan struct{}), done: make(chan struct{}),
	}
	for _, r := range LostReasons {
		w.lost[r] = new(atomic.Uint64)
	}
	w.lostLog.log = log
	return w, nil
}

// Start starts the writer's goroutine, writing on nc (connected, or
// connecting: letters wait and are retried until it is). It does not
// block. Call it once, and not after Stop.
func (w *Writer) Start(_ context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(w.cfg.InFlight),
		jetstream.WithPublishAsyncTimeout(w.cfg.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { w.settle(m, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { w.settle(m, err) }))
	if err != nil {
		return fmt.Errorf("dlq writer: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closing {
		return errors.New("dlq writer: started already, or stopped")
	}
	w.started, w.nc, w.js = true, nc, js
	go w.loop()
	return nil
}

// queued is a letter waiting for the writer's goroutine to build it.
type queued struct {
	l      Letter
	deadAt time.Time // when Write was called
}

// Write queues a dead letter, dead now. It never blocks, and its work does
// not grow with the letter's headers or payload: building and trimming
// happen on the writer's goroutine, which from then on reads l.Header and
// l.Data (the caller must not modify them after Write). A letter too large
// for the server is trimmed to fit (see Letter.Msg), or counted lost if it
// cannot; so is one that finds the buffer full.
func (w *Writer) Write(l Letter) {
	if l.Node == "" {
		l.Node = w.id.Node
	}
	q := &queued{l: l, deadAt: time.Now()}
	w.mu.Lock()
	why := w.admitLocked()
	if why == "" {
		w.queue[(w.head+w.n)%len(w.queue)] = q
		w.n++
	}
	w.mu.Unlock()
	if why != "" {
		w.dropLetter(why, l)
		return
	}
	w.signal()
}

// prepare builds and trims the message of a letter taken off the queue,
// on the writer's goroutine; a letter that cannot fit is counted lost and
// gives nil.
func (w *Writer) prepare(q *queued) *nats.Msg {
	m := q.l.build(w.id.Prefix, q.deadAt)
	trimmed, err := trim(m, w.maxPayload())
	if err != nil {
		w.drop(LostRefused, m, err)
		return nil
	}
	if trimmed {
		w.trimmed.Add(1)
	}
	return m
}

// maxPayload is the most a message may carry on nc's server: NATS's default
// until the connection has learned it.
func (w *Writer) maxPayload() int64 {
	if mp := w.nc.MaxPayload(); mp > 0 {
		return mp
	}
	return defaultMaxPayload
}

// defaultMaxPayload is nats-server's default max_payload.
const defaultMaxPayload = 1 << 20

// Stats returns the counters so far.
func (w *Writer) Stats() WriterStats {
	st := WriterStats{Written: w.written.Load(), Retried: w.retried.Load(), Trimmed: w.trimmed.Load(), LostBy: map[LostReason]uint64{}}
	for r, n := range w.lost {
		st.LostBy[r] = n.Load()
		st.Lost += st.LostBy[r]
	}
	return st
}

// admitLocked says why a letter cannot wait to be written, or "" if it can.
func (w *Writer) admitLocked() LostReason {
	switch {
	case w.stopped:
		return LostShutdown
	case w.n+w.retries.Len() >= w.cfg.Buffer:
		return LostBufferFull
	}
	return ""
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// drop counts and logs a letter that will not be written.
func (w *Writer) drop(why LostReason, m *nats.Msg, err error) {
	w.lost[why].Add(1)
	push := m.Header.Get(protocol.HeaderID) + " " + m.Subject
	if err != nil {
		push += " (" + err.Error() + ")"
	}
	w.lostLog.add(lostWhy[why], push)
}

// dropLetter counts and logs a letter lost before it was built.
func (w *Writer) dropLetter(why LostReason, l Letter) {
	w.lost[why].Add(1)
	w.lostLog.add(lostWhy[why], l.Header.Get(protocol.HeaderID)+" "+l.subject(w.id.Prefix))
}

// settle handles the outcome of one write: written; refused for good, or
// the writer stopped: lost; failed otherwise: tried again after a backoff,
// unless it has failed for RetryFor or the buffer is full.
func (w *Writer) settle(m *nats.Msg, err error) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		w.missing.Store(true)
	}
	w.mu.Lock()
	w.inFlight--
	why := w.outcomeLocked(m, err, time.Now())
	w.mu.Unlock()
	switch {
	case err == nil:
		w.written.Add(1)
	case why != "":
		w.drop(why, m, err)
	default:
		w.retried.Add(1)
		w.log.Debug("dead-letter write failed; retrying", zap.String("push_id", m.Header.Get(protocol.HeaderID)), zap.Error(err))
	}
	w.signal()
}

// outcomeLocked records the outcome of a write of m and says why m is lost,
// or "" if it was written or will be tried again.
func (w *Writer) outcomeLocked(m *nats.Msg, err error, now time.Time) LostReason {
	r := w.failing[m]
	var why LostReason
	switch {
	case err == nil:
	case refused(err):
		why = LostRefused
	case w.stopped:
		why = LostShutdown
	case r != nil && now.Sub(r.since) >= w.cfg.RetryFor:
		why = LostGaveUp
	case w.n+w.retries.Len() >= w.cfg.Buffer:
		why = LostBufferFull
	default:
		if r == nil {
			r = &retry{m: m, since: now}
			w.failing[m] = r
		}
		r.fails++
		r.due = now.Add(backoff(r.fails))
		heap.Push(&w.retries, r)
		return ""
	}
	delete(w.failing, m)
	return why
}

// refused reports whether err is the stream refusing a letter for good: a
// bad request (too large for the stream, more than 64 KiB of headers, a
// header whose condition fails) or a failed precondition, or a message
// nats.go will never send.
func refused(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code == 400 || api.Code == 412
	}
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadHeaderMsg) ||
		errors.Is(err, nats.ErrBadSubject) || errors.Is(err, nats.ErrHeadersNotSupported)
}

// backoff is how long a letter that failed fails times waits: 10 ms,
// doubling, at most a second.
func backoff(fails int) time.Duration {
	return min(10*time.Millisecond<<min(fails-1, 7), time.Second)
}

// ensureStream creates the stream again after writes found none.
func (w *Writer) ensureStream() {
	if w.cfg.Ensure == nil || !w.missing.Load() || time.Since(time.Unix(0, w.ensuring.Load())) < time.Second {
		return
	}
	w.ensuring.Store(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.AckTimeout)
	defer cancel()
	if err := w.cfg.Ensure(ctx); err != nil {
		w.log.Warn("dead-letter stream missing and not created", zap.Error(err))
		return
	}
	w.missing.Store(false)
	w.log.Warn("dead-letter stream was missing: created it again")
}

// next takes the letter to write next, counting it in flight: the one
// whose retry is due soonest if it is due (m), else the oldest fresh one
// (q, to be built) — unless InFlight letters are in flight. With nothing to take it says how
// long until a retry is due (0: none to wait for) and whether the loop is
// done: Stop was called and nothing is queued, waiting or in flight, or
// Stop gave up. Once done, nothing more is admitted.
func (w *Writer) next(now time.Time) (m *nats.Msg, q *queued, wait time.Duration, done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
		return nil, nil, 0, true
	case w.inFlight >= w.cfg.InFlight:
		return nil, nil, 0, false // an outcome wakes the loop
	case w.retries.Len() > 0 && !w.retries[0].due.After(now):
		m = heap.Pop(&w.retries).(*retry).m
	case w.n > 0:
		q = w.queue[w.head]
		w.queue[w.head] = nil
		w.head = (w.head + 1) % len(w.queue)
		w.n--
	case w.retries.Len() > 0:
		return nil, nil, w.retries[0].due.Sub(now), false
	default:
		w.stopped = w.closing && w.inFlight == 0
		return nil, nil, 0, w.stopped
	}
	w.inFlight++
	return m, q, 0, false
}

// unclaim gives back the in-flight place of a letter next took that was
// not published.
func (w *Writer) unclaim() {
	w.mu.Lock()
	w.inFlight--
	w.mu.Unlock()
}

// loop is the writer's goroutine: it publishes letters until Stop has
// been called and nothing is left queued, waiting or in flight, or Stop
// gave up.
func (w *Writer) loop() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m, q, wait, done := w.next(time.Now())
		switch {
		case done:
			return
		case q != nil:
			w.publishNew(q)
			continue
		case m != nil:
			w.publish(m)
			continue
		}
		var due <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			due = timer.C
		}
		select {
		case <-w.wake:
		case <-due:
		case <-w.abort:
		}
	}
}

// publishNew builds, trims and sends a fresh letter.
func (w *Writer) publishNew(q *queued) {
	if m := w.prepare(q); m != nil {
		w.publish(m)
		return
	}
	w.unclaim()
}

// publish sends one letter; its outcome comes to settle.
func (w *Writer) publish(m *nats.Msg) {
	w.ensureStream()
	if _, err := w.js.PublishMsgAsync(m); err != nil {
		w.settle(m, err)
	}
}

// Stop writes what is queued, waiting for a retry and in flight, and stops
// the writer. If ctx ends first, every letter not yet written is logged with
// its push id, counted as lost, and ctx's error returned. A letter written
// after Stop is counted lost; so is every letter of a writer stopped
// without having started (and Stop then says how many).
func (w *Writer) Stop(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	started := w.started
	w.mu.Unlock()
	if !started {
		n := w.abandon()
		w.lostLog.flush()
		if n > 0 {
			return fmt.Errorf("%d queued dead letters not written: the writer never started", n)
		}
		return nil
	}
	w.signal()
	select {
	case <-w.done:
		w.js.CleanupPublisher() // nothing is in flight: this ends the acknowledgements' subscription
		w.lostLog.flush()
		return nil
	case <-ctx.Done():
	}
	n := w.abandon()
	close(w.abort)
	<-w.done
	inFlight := w.js.PublishAsyncPending()
	w.js.CleanupPublisher() // fails what is in flight, which is dropped as lost
	w.lostLog.flush()
	return errors.Join(ctx.Err(), fmt.Errorf("%d queued and %d in-flight dead letters not written", n, inFlight))
}

// abandon stops admitting letters and counts every one still queued or
// waiting for a retry as lost (shutdown), returning how many there were.
func (w *Writer) abandon() int {
	w.mu.Lock()
	w.stopped = true
	fresh, failed := w.takeAllLocked()
	w.mu.Unlock()
	for _, q := range fresh {
		w.dropLetter(LostShutdown, q.l)
	}
	for _, m := range failed {
		w.drop(LostShutdown, m, nil)
	}
	return len(fresh) + len(failed)
}

// takeAllLocked empties the queue and the retry list.
func (w *Writer) takeAllLocked() (fresh []*queued, failed []*nats.Msg) {
	fresh = make([]*queued, 0, w.n)
	for ; w.n > 0; w.n-- {
		fresh = append(fresh, w.queue[w.head])
		w.queue[w.head] = nil
		w.head = (w.head + 1) % len(w.queue)
	}
	failed = make([]*nats.Msg, 0, w.retries.Len())
	for _, r := range w.retries {
		failed = append(failed, r.m)
		delete(w.failing, r.m)
	}
	w.retries = nil
	return fresh, failed
}

// retry is a letter whose write failed.
type retry struct {
	m     *nats.Msg
	since time.Time // the first failure
	fails int
	due   time.Time // when it is tried again
}

// retryQueue is a min-heap of retries by due time.
type retryQueue []*retry

func (q retryQueue) Len() int           { return len(q) }
func (q retryQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q retryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *retryQueue) Push(x any)        { *q = append(*q, x.(*retry)) }
func (q *retryQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return r
}
