package dlq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus/protocol"
)

// WriterConfig tunes a Writer.
type WriterConfig struct {
	Prefix string // the push subject prefix
	Node   string // written into Push-Node
	// Buffer bounds dead letters waiting to be written, retries included.
	// When it is full a dead letter is logged with its push id and counted
	// as lost.
	Buffer int
	// InFlight bounds writes waiting for JetStream's acknowledgement.
	InFlight int
	// AckTimeout is how long a write waits for its acknowledgement before
	// it is retried.
	AckTimeout time.Duration
	// Ensure, when set, is called (at most once a second) when a write finds
	// no stream to take it — the stream was deleted, or JetStream lost it —
	// to create it again.
	Ensure func(context.Context) error
}

// DefaultWriterConfig buffers 65,536 dead letters with 1,024 in flight.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{Prefix: "push", Buffer: 65536, InFlight: 1024, AckTimeout: 5 * time.Second}
}

// WriterStats count what a Writer did.
type WriterStats struct {
	Written uint64 // acknowledged by the stream
	Retried uint64 // writes that failed and were queued again
	Lost    uint64 // dead letters dropped: the buffer was full or Close ran out of time
}

// Writer writes dead letters to the stream asynchronously. Write never
// blocks: letters wait in a bounded buffer, go out with a bounded number in
// flight, and are retried (with backoff) until the stream acknowledges
// them, so a JetStream outage holds up no one. Only when the buffer is full
// is a letter dropped, and then it is counted and logged with its push id
// (lost ones are logged in batches, see lostLog).
type Writer struct {
	cfg WriterConfig
	js  jetstream.JetStream
	log *zap.Logger

	written, retried, lost atomic.Uint64
	lostLog                lostLog

	mu      sync.Mutex
	queue   []*nats.Msg // guarded by mu: a ring of Buffer messages
	head, n int         // guarded by mu
	closing bool        // guarded by mu: Close was called
	aborted bool        // guarded by mu: Close ran out of time; nothing more is written

	wake  chan struct{} // capacity 1: a letter or a retry arrived, or Close was called
	abort chan struct{} // closed by Close when its context ends
	done  chan struct{} // closed when the write loop has ended

	backoff time.Duration // owned by the write loop

	missing  atomic.Bool  // a write found no stream; set by failed, cleared by the loop
	ensuring atomic.Int64 // unix nanos of the last Ensure call; owned by the loop
}

// NewWriter starts a Writer on nc. Close stops it.
func NewWriter(nc *nats.Conn, cfg WriterConfig, log *zap.Logger) (*Writer, error) {
	if cfg.Buffer <= 0 || cfg.InFlight <= 0 || cfg.AckTimeout <= 0 || cfg.Prefix == "" {
		return nil, fmt.Errorf("dlq writer config: buffer, in-flight and ack timeout must be positive and the prefix set: %+v", cfg)
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Writer{
		cfg: cfg, log: log, queue: make([]*nats.Msg, cfg.Buffer),
		wake: make(chan struct{}, 1), abort: make(chan struct{}), done: make(chan struct{}),
	}
	w.lostLog.log = log
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.InFlight),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(w.acked),
		jetstream.WithPublishAsyncErrHandler(w.failed))
	if err != nil {
		return nil, err
	}
	w.js = js
	go w.loop()
	return w, nil
}

// Write queues a dead letter. It never blocks.
func (w *Writer) Write(l Letter) {
	if l.Node == "" {
		l.Node = w.cfg.Node
	}
	w.enqueue(l.Msg(w.cfg.Prefix, time.Now()), false)
}

// Stats returns the counters so far.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Written: w.written.Load(), Retried: w.retried.Load(), Lost: w.lost.Load()}
}

func (w *Writer) enqueue(m *nats.Msg, retry bool) {
	w.mu.Lock()
	if w.aborted || w.n == len(w.queue) {
		why := "dead-letter buffer full"
		if w.aborted {
			why = "shutting down before it could be written"
		}
		w.mu.Unlock()
		w.drop(m, why)
		return
	}
	w.queue[(w.head+w.n)%len(w.queue)] = m
	w.n++
	w.mu.Unlock()
	if retry {
		w.retried.Add(1)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Writer) drop(m *nats.Msg, why string) {
	w.lost.Add(1)
	w.lostLog.add(why, m.Header.Get(protocol.HeaderID)+" "+m.Subject)
}

// lostLog logs lost dead letters in batches: one line ("dead letters lost")
// per lostBatch pushes or lostFlush, whichever comes first, each push as
// "<push id> <subject>". Every lost push is in the log, and a flood of them
// makes a few long lines rather than a line each that the log's sampling
// would thin out.
type lostLog struct {
	mu     sync.Mutex
	log    *zap.Logger
	why    string      // guarded by mu: why the batch's pushes were lost
	pushes []string    // guarded by mu
	timer  *time.Timer // guarded by mu: flushes the batch
}

const (
	lostBatch = 5000
	lostFlush = 100 * time.Millisecond
)

func (l *lostLog) add(why, push string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pushes) > 0 && why != l.why {
		l.flushLocked()
	}
	l.why = why
	l.pushes = append(l.pushes, push)
	switch {
	case len(l.pushes) >= lostBatch:
		l.flushLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(lostFlush, l.flush)
	}
}

func (l *lostLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *lostLog) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if len(l.pushes) == 0 {
		return
	}
	l.log.Error("dead letters lost", zap.String("why", l.why), zap.Int("count", len(l.pushes)), zap.Strings("pushes", l.pushes))
	l.pushes = nil
}

func (w *Writer) acked(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) {
	w.written.Add(1)
}

// failed runs when a write was refused, timed out or cut by a reconnect: the
// letter goes back in the queue.
func (w *Writer) failed(_ jetstream.JetStream, m *nats.Msg, err error) {
	w.log.Debug("dead-letter write failed; retrying", zap.String("push_id", m.Header.Get(protocol.HeaderID)), zap.Error(err))
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		w.missing.Store(true)
	}
	w.enqueue(m, true)
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

// next takes the oldest queued letter. With nothing queued it reports
// whether Close was called; after an abort it reports stop.
func (w *Writer) next() (m *nats.Msg, closing, stop bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aborted {
		return nil, true, true
	}
	if w.n == 0 {
		return nil, w.closing, false
	}
	m = w.queue[w.head]
	w.queue[w.head] = nil
	w.head = (w.head + 1) % len(w.queue)
	w.n--
	return m, w.closing, false
}

// loop is the writer's goroutine: it publishes queued letters, backing off
// after failures, until Close has been called and nothing is left queued or
// in flight, or Close gave up.
func (w *Writer) loop() {
	defer close(w.done)
	for {
		m, closing, stop := w.next()
		switch {
		case stop:
			return
		case m != nil:
			w.publish(m)
		case closing && w.js.PublishAsyncPending() == 0:
			return
		case closing:
			select { // acks or failures are still coming
			case <-w.wake:
			case <-w.js.PublishAsyncComplete():
			case <-w.abort:
			}
		default:
			select {
			case <-w.wake:
			case <-w.abort:
			}
		}
	}
}

// publish sends one letter; a refusal puts it back and backs off, doubling
// up to a second.
func (w *Writer) publish(m *nats.Msg) {
	w.ensureStream()
	if _, err := w.js.PublishMsgAsync(m); err == nil {
		w.backoff = 0
		return
	}
	w.enqueue(m, true)
	w.backoff = min(max(2*w.backoff, 10*time.Millisecond), time.Second)
	t := time.NewTimer(w.backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.abort:
	}
}

// Close writes what is queued and in flight, and stops the writer. If ctx
// ends first, every letter not yet written is logged with its push id,
// counted as lost, and ctx's error returned.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
		w.lostLog.flush()
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	w.aborted = true
	left := w.n
	for ; w.n > 0; w.n-- {
		w.drop(w.queue[w.head], "shutting down before it could be written")
		w.queue[w.head] = nil
		w.head = (w.head + 1) % len(w.queue)
	}
	w.mu.Unlock()
	close(w.abort)
	<-w.done
	inFlight := w.js.PublishAsyncPending()
	w.js.CleanupPublisher() // fails what is in flight, which is dropped as lost
	w.lostLog.flush()
	return errors.Join(ctx.Err(), fmt.Errorf("%d queued and %d in-flight dead letters not written", left, inFlight))
}

// Collectors are the writer's Prometheus collectors: dead letters written,
// writes that failed (and were retried), dead letters lost.
func (w *Writer) Collectors() []prometheus.Collector {
	stat := func(name, help string, v func(WriterStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(w.Stats())) })
	}
	return []prometheus.Collector{
		stat("pushfabric_dead_letters_written_total", "Dead letters acknowledged by the PUSH_DLQ stream.",
			func(s WriterStats) uint64 { return s.Written }),
		stat("pushfabric_dead_letter_write_failures_total", "Dead-letter writes that failed and were queued again.",
			func(s WriterStats) uint64 { return s.Retried }),
		stat("pushfabric_pushes_lost_total", "Pushes neither delivered nor dead-lettered: the dead-letter buffer was full, or the node stopped before writing them. Each is logged with its push id.",
			func(s WriterStats) uint64 { return s.Lost }),
	}
}
