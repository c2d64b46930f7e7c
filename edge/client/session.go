package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// Session holds a session across connections: when its connection ends it
// connects again, with exponential backoff and full jitter, as DESIGN §8
// says clients do. With a token callback (ReconnectOptions.Token) it also
// refreshes each connection's token ahead of its exp (RefreshTime), so
// that the edge does not close it token_expired. It reconnects after shutdown, idle, too_slow,
// overloaded, token_expired (with a fresh token from
// ReconnectOptions.Token) and network loss; it stops after replaced, auth,
// revoked, protocol and normal, and Err then returns the server's
// *CloseError. Pushes repeated across connections (a hand-over between
// nodes, a replay) are dropped by push id within ReconnectOptions.Dedupe;
// a repeat that asks for a receipt is confirmed again, unseen, once the
// application has confirmed (or, with automatic receipts, taken) the push
// it repeats. Receipts go
// on the current connection (a push taken from one that has ended comes
// again, handed on by the edge, and is confirmed as a repeat).
//
// A Session has one goroutine, which holds the current connection and
// delivers its pushes; Close ends it and waits for it.
type Session struct {
	addr    string
	o       Options
	r       ReconnectOptions
	backoff Backoff
	ctx     context.Context // the session's life: canceled by Close
	cancel  context.CancelFunc
	pushes  chan Frame    // closed by the session's goroutine when it stops
	done    chan struct{} // closed by the session's goroutine when it stops
	dups    atomic.Uint64

	receipts *confirmer // confirmations of pushes taken, for the current connection

	// owned by the session's goroutine (by Connect before it starts)
	seen     *window
	attempts int // connect attempts over the session's life
	retries  int // waits since the last connection that stayed up MaxDelay

	mu   sync.Mutex
	conn *Conn  // guarded by mu: the current connection, nil between them
	id   string // guarded by mu: the session the server gave
	err  error  // guarded by mu: why the session stopped
}

// Connect connects to addr (as [Dial] does) and returns a Session holding
// the connection. It retries by the rules of Session until a connection
// is made, ctx ends, the server gives a reason not to reconnect, or it
// gives up; each failed attempt is reported to ReconnectOptions.OnState.
// ctx bounds only Connect: the Session lives until Close or a reason to
// stop.
func Connect(ctx context.Context, addr string, o Options, r ReconnectOptions) (*Session, error) {
	if err := checkAddr(addr); err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	s := newSession(addr, o, r)
	c, err := s.connect(ctx, nil)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	s.attach(c)
	go s.run(c)
	return s, nil
}

func checkAddr(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "ws", "wss", "tcp", "tls":
	default:
		return errScheme(u.Scheme)
	}
	return nil
}

func newSession(addr string, o Options, r ReconnectOptions) *Session {
	r = r.withDefaults()
	buffer := o.Buffer
	if buffer == 0 {
		buffer = 1024
	}
	s := &Session{
		addr: addr, o: o, r: r, backoff: Backoff{Base: r.BaseDelay, Max: r.MaxDelay},
		pushes: make(chan Frame, buffer), done: make(chan struct{}), seen: newWindow(r.Dedupe),
	}
	s.receipts = &confirmer{send: s.confirmIDs}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// connect dials until a connection is made, waiting before each attempt
// but a first connect's first. after is what ended the previous
// connection. It returns the error that ends the session otherwise.
func (s *Session) connect(ctx context.Context, after error) (*Conn, error) {
	last := after
	for failed := 0; ; failed++ {
		if failed > 0 || after != nil {
			if err := s.pause(ctx, failed, last); err != nil {
				return nil, err
			}
		}
		c, err := s.dial(ctx)
		switch {
		case err == nil:
			return c, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		if stop, end := stops(err, s.r.Token != nil); stop {
			return nil, end
		}
		if last = err; s.r.MaxAttempts > 0 && failed+1 >= s.r.MaxAttempts {
			return nil, fmt.Errorf("%w after %d attempts: %w", ErrGaveUp, failed+1, err)
		}
	}
}

// pause reports the wait before the next attempt and waits it out.
func (s *Session) pause(ctx context.Context, failed int, last error) error {
	wait := s.backoff.Delay(s.retries, s.r.Rand())
	s.retries++
	st := State{Kind: StateRetrying, Err: last, Attempt: failed, Delay: wait}
	if failed == 0 {
		st.Kind = StateDisconnected
	}
	s.notify(st)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dial makes one connect attempt, with a fresh token if there is a token
// callback.
func (s *Session) dial(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.r.DialTimeout)
	defer cancel()
	o := s.o
	o.OnPush, o.Buffer = nil, 1 // the session's goroutine takes each push
	o.ManualReceipts = true     // and the session confirms them
	if s.r.Token != nil {
		tok, err := callToken(ctx, s.r.Token)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		o.Token = tok
	}
	addr := s.addr
	if s.r.Addr != nil {
		addr = s.r.Addr(s.attempts)
	}
	s.attempts++
	return Dial(ctx, addr, o)
}

// run holds connections until the session stops.
func (s *Session) run(c *Conn) {
	var after error
	for {
		err := s.hold(c, after)
		if end := s.ending(err); end != nil {
			s.stop(end)
			return
		}
		after = err
		if c, err = s.connect(s.ctx, after); err != nil {
			s.stop(s.ending(err))
			return
		}
		s.attach(c)
	}
}

// ending is the error that ends the session after err, nil for a
// reconnect: ErrClosed once Close was called, a *CloseError that stops.
func (s *Session) ending(err error) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if stop, end := stops(err, s.r.Token != nil); stop {
		return end
	}
	if errors.Is(err, ErrGaveUp) {
		return err
	}
	return nil
}

// withRefreshErr is err, the end of a connection, naming the refresh that
// failed before it when the connection ended token_expired.
func withRefreshErr(err, refreshErr error) error {
	var ce *CloseError
	if refreshErr == nil || !errors.As(err, &ce) || ce.Reason != wire.CloseTokenExpired {
		return err
	}
	return fmt.Errorf("%w (%w)", err, refreshErr)
}

// attach makes c the current connection.
func (s *Session) attach(c *Conn) {
	s.mu.Lock()
	s.conn, s.id = c, c.Session()
	s.mu.Unlock()
}

// hold delivers c's pushes until it ends and returns why it ended. With a
// token callback, it keeps c's token fresh meanwhile (refresh).
func (s *Session) hold(c *Conn, after error) error {
	s.notify(State{Kind: StateConnected, Node: c.Node(), Err: after})
	up := time.Now()
	var refresher sync.WaitGroup
	var refreshErr error // the refresher's; read after Wait
	if s.r.Token != nil {
		refresher.Go(func() { refreshErr = c.KeepTokenFresh(s.ctx, c.token, s.r.Token, s.r.DialTimeout) })
	}
	for {
		f, err := c.Recv(s.ctx)
		if err != nil || !s.deliver(f) {
			break
		}
	}
	s.receipts.flush()
	s.mu.Lock()
	s.conn = nil
	s.mu.Unlock()
	_ = c.Close()
	if time.Since(up) >= s.backoff.Max {
		s.retries = 0
	}
	refresher.Wait()
	return withRefreshErr(c.Err(), refreshErr)
}

// deliver hands f to the application unless it is a repeat; false when
// the session is closing. A repeat that asks for a receipt is confirmed
// again if the application has confirmed the push it showed, so that the
// edge holding it stops waiting; otherwise the application's own
// confirmation, when it comes, confirms it.
func (s *Session) deliver(f Frame) bool {
	if f.Type == wire.TypePush && f.ID != "" {
		if isNew, confirmed := s.seen.add(f.ID); !isNew {
			s.dups.Add(1)
			if f.WantsReceipt && confirmed {
				s.receipts.add(f.ID)
			}
			return true
		}
	}
	if f.Type == wire.TypePush && s.o.OnPush != nil {
		s.o.OnPush(f)
		s.taken(&f)
		return true
	}
	select {
	case s.pushes <- f:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// stop records why the session ended and releases everyone waiting.
func (s *Session) stop(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.notify(State{Kind: StateStopped, Err: err})
	close(s.pushes)
	close(s.done)
}

func (s *Session) notify(st State) {
	if s.r.OnState != nil {
		s.r.OnState(st)
	}
}

// ID is the session the server gave the latest connection.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Node is the node holding the session, or "" between connections.
func (s *Session) Node() string {
	if c := s.current(); c != nil {
		return c.Node()
	}
	return ""
}

func (s *Session) current() *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// Duplicates is how many pushes were dropped as repeats of a push id in
// the window.
func (s *Session) Duplicates() uint64 { return s.dups.Load() }

// Done is closed when the session has stopped.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why the session stopped: ErrClosed after Close, the server's
// *CloseError for a reason not to reconnect, an error wrapping ErrGaveUp
// when it gave up. Nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Recv returns the next push, or a connection-level error frame (Type
// wire.TypeError, empty ID), across connections, each push id once within
// the window. Once the session has stopped and every push was received, it
// returns Err().
func (s *Session) Recv(ctx context.Context) (Frame, error) {
	s.receipts.flush() // the application is done with what it took before
	select {
	case f, ok := <-s.pushes:
		if !ok {
			return Frame{}, s.Err()
		}
		s.taken(&f)
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

// Request sends a request on the current connection and yields its
// response frames, as [Conn.Request] does. Requests are not retried: one
// made between connections fails at once with ErrDisconnected, and one in
// flight when its connection ends yields an error matching ErrDisconnected
// (and the *CloseError, if the server closed it). Whether the request took
// effect is then unknown; only the caller can say whether to send it
// again.
func (s *Session) Request(ctx context.Context, method string, payload []byte) iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		c := s.current()
		if c == nil {
			yield(Frame{}, ErrDisconnected)
			return
		}
		for f, err := range c.Request(ctx, method, payload) {
			var re *RequestError
			if err != nil && !errors.As(err, &re) && ctx.Err() == nil {
				err = fmt.Errorf("%w: %w", ErrDisconnected, err)
			}
			if !yield(f, err) {
				return
			}
		}
	}
}

// Close ends the session: it closes the current connection (with a close
// frame) or stops reconnecting, and waits for the session's goroutine.
// Pushes not yet received are dropped; Err then returns ErrClosed, unless
// the session had stopped already. It returns nil.
func (s *Session) Close() error {
	s.cancel()
	<-s.done
	s.receipts.stop()
	return nil
}

// taken confirms f, if it asks for a receipt and the session confirms on
// its own.
func (s *Session) taken(f *Frame) {
	if f.Type == wire.TypePush && f.WantsReceipt && !s.o.ManualReceipts {
		s.seen.confirm(f.ID)
		s.receipts.add(f.ID)
	}
}
