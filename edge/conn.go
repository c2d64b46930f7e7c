package edge

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// PushHandle is how a producer in the process pushes to one session's
// connection. [*Conn] implements it.
type PushHandle interface {
	// Session is the session the connection holds.
	Session() string
	// Push queues e at priority p, waiting for room while the queue is
	// full. It returns nil once e is queued, ErrClosed if the connection is
	// closing, ctx.Err() if ctx ends first, or an error for a frame that
	// can never be queued. It never dead-letters: on error the caller still
	// holds e, and its receipt is told nothing.
	Push(ctx context.Context, p push.Priority, e Envelope) error
	// TryPush queues e at priority p without waiting. When it cannot, it
	// returns ErrQueueFull or ErrClosed, or, under the TryPushDeadLetters
	// policy, dead-letters e (its receipt, or the dead-letter sink, takes
	// it) and returns a *DeadLetteredError wrapping one of them. A
	// receipt-push (e.Frame.WantsReceipt) a closing connection refuses is
	// handed over as that connection's unconfirmed pushes are (it follows
	// the session), and TryPush returns nil.
	TryPush(p push.Priority, e Envelope) error
	// Done is closed when the connection has ended and everything it held
	// was written or dead-lettered.
	Done() <-chan struct{}
}

var _ PushHandle = (*Conn)(nil)

type connState uint8

const (
	stateOpen     connState = iota
	stateDraining           // intake stopped; writing what is left until the deadline
	stateClosed             // socket closed; nothing more is written
)

type writerState uint8

const (
	writerHeld     writerState = iota // not admitted yet: admit gives the write side its first owner
	writerIdle                        // no owner: the next frame schedules one
	writerRunning                     // an owner is scheduled or writing
	writerSleeping                    // waiting for rate-limit tokens; rateTimer owns the write side
)

// Conn is one client connection holding one session: an actor whose write
// side has exactly one owner at a time. Its methods are safe for concurrent
// use.
type Conn struct {
	// Set before the connection is shared; read-only after.
	srv     *Server
	session string
	started time.Time
	nc      net.Conn
	remote  net.Addr        // the client's: nc's peer, or what its PROXY header says
	raw     syscall.RawConn // nil when the transport gives no raw access
	fr      framing
	limiter *rate.Limiter // nil without a rate limit; used by the write side's owner
	done    chan struct{} // closed by the reader goroutine at the very end

	// The groups the connection is a member of (Groups, ChangeGroups),
	// sorted.
	groupsMu sync.Mutex
	groups   []string // guarded by groupsMu

	// Set once the dead-letter sink panicked on one of the connection's
	// pushes: the rest are counted lost, not handed to it again.
	sinkPanicked atomic.Bool

	mu sync.Mutex
	// Guarded by mu.
	state         connState
	writer        writerState
	out           outbox
	win           unconfirmed // receipt-pushes written and not yet confirmed
	room          broadcast   // pushes left the queues: wakes producers waiting in Push
	writerGone    broadcast   // the write side's owner let go: wakes the reader waiting at the end
	reqs          map[string]*request
	closeReason   wire.CloseReason
	closeMessage  string      // the close frame's message: why, for a protocol or refused refresh close; else empty
	closeCode     uint16      // the WebSocket close code when not closeReason's own: 1007 for text not UTF-8
	closeErr      error       // what ended the connection, for the close hook; nil for a requested close
	leftover      push.Reason // the reason pushes still queued at the end are dead-lettered with
	drainDeadline time.Time   // when a draining connection gives up
	rateTimer     *time.Timer

	// Owned by the reader goroutine.
	lastRead time.Time      // when the client's last bytes arrived
	expires  time.Time      // when the token ends (closed token_expired then); zero: never. Set before the reader starts
	in       input          // what frames are read through
	limits   clientLimits   // what the client may send
	reqWG    sync.WaitGroup // request goroutines

	// Owned by the reader goroutine: when the refresh rate has room again
	// without its burst (refreshAllowed).
	refreshAt time.Time
}

// Session returns the session id the connection holds.
func (c *Conn) Session() string { return c.session }

// Started is when the connection was accepted.
func (c *Conn) Started() time.Time { return c.started }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Done is closed when the connection has ended completely: the socket is
// closed, every push was written or dead-lettered, every request ended and
// the close hook ran.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Push implements [PushHandle].
func (c *Conn) Push(ctx context.Context, p push.Priority, e Envelope) error {
	e.Frame.Type, e.Frame.Priority = wire.TypePush, p
	c.srv.metrics.received[p&1].Inc()
	if err := c.srv.checkPush(&e.Frame); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.mu.Lock()
		refused := c.enqueueLocked(p, e)
		if refused != push.ReasonQueueFull {
			c.mu.Unlock()
			return refusalErr(refused)
		}
		room := c.room.waitLocked()
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TryPush implements [PushHandle].
func (c *Conn) TryPush(p push.Priority, e Envelope) error {
	e.Frame.Type, e.Frame.Priority = wire.TypePush, p
	c.srv.metrics.received[p&1].Inc()
	if err := c.srv.checkPush(&e.Frame); err != nil {
		if c.srv.cfg.TryPush == TryPushDeadLetters {
			c.deadLetter([]item{{e: e}}, push.ReasonInvalid)
			return &DeadLetteredError{Reason: push.ReasonInvalid, Err: err}
		}
		return err
	}
	c.mu.Lock()
	refused := c.enqueueLocked(p, e)
	c.mu.Unlock()
	if refused == "" {
		return nil
	}
	if refused != push.ReasonQueueFull && e.Frame.WantsReceipt {
		c.handOverUnconfirmed([]item{{e: e}})
		return nil
	}
	if c.srv.cfg.TryPush != TryPushDeadLetters {
		return refusalErr(refused)
	}
	c.deadLetter([]item{{e: e}}, refused)
	switch refused {
	case push.ReasonQueueFull:
		return errDeadQueueFull
	case push.ReasonShutdown:
		return errDeadShutdown
	}
	return errDeadClosed
}

// enqueueLocked queues e, or returns the reason it cannot: queue_full, or
// for a closing connection shutdown (the node is stopping) or closed.
func (c *Conn) enqueueLocked(p push.Priority, e Envelope) push.Reason {
	if c.state != stateOpen {
		if c.leftover == push.ReasonShutdown {
			return push.ReasonShutdown
		}
		return push.ReasonClosed
	}
	cfg := &c.srv.cfg
	q := c.out.queue(p)
	if q.len() >= cfg.QueueLen || c.out.bytes[p]+len(e.Frame.Payload) > cfg.QueueBytes {
		return push.ReasonQueueFull
	}
	q.push(item{e: e, at: c.srv.now()})
	c.out.bytes[p] += len(e.Frame.Payload)
	c.wakeWriterLocked()
	return ""
}

func refusalErr(r push.Reason) error {
	switch r {
	case "":
		return nil
	case push.ReasonQueueFull:
		return ErrQueueFull
	}
	return ErrClosed
}

// wakeWriterLocked gives the write side an owner if it has none, or if it
// sleeps for rate-limit tokens while a control frame is due: those never
// wait for tokens.
func (c *Conn) wakeWriterLocked() {
	switch {
	case c.writer == writerIdle:
	case c.writer == writerSleeping && c.out.hasControl():
		c.rateTimer.Stop() // rateWake, if already running, finds the writer running
	default:
		return
	}
	c.writer = writerRunning
	c.srv.sched.schedule(c)
}

// abortTimeout bounds how long an abrupt close waits to get its close frame
// out before it closes the socket anyway.
const abortTimeout = time.Second
