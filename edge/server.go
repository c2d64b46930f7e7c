package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/registry"
)

// Hooks are optional callbacks into the protocol. They run on the edge's
// goroutines: BeforeSend on the write path, so it must be quick and must
// not block; the others may do modest work. A panic in a hook is contained:
// it is logged with its stack, counted in pushfabric_connection_panics_total,
// and closes that connection only (reason protocol; a panicking OnConnect
// refuses the connection like an error), whatever goroutine ran the hook.
type Hooks struct {
	// Admit runs for an authenticated client before its connection takes
	// the session, so an error refuses it while any connection of that
	// session on this node stays as it is (OnConnect runs only after the
	// new connection has replaced it). The client is closed with reason
	// shutdown and the error's text; counted as a refused rejection.
	Admit func(session string) error
	// OnConnect runs once a connection holds its session, before the client
	// is welcomed or anything is read; c is its PushHandle. A client that
	// has its welcome frame can therefore count on what OnConnect set up.
	// An error refuses the connection: it is closed with reason shutdown
	// (the client should reconnect, to another node if it can).
	OnConnect func(c *Conn) error
	// BeforeSend runs for every push and response frame just before it is
	// encoded, and may rewrite it.
	BeforeSend func(c *Conn, f *Frame)
	// OnCommandEnd runs exactly once for every request that reached its
	// handler, after its last frame was queued, whether it ended normally,
	// with an error, canceled or abandoned by a closing connection. err is
	// what the handler or its stream returned (nil when it completed).
	OnCommandEnd func(c *Conn, req *Request, err error)
	// OnProtocolError runs for every error frame sent to the client.
	OnProtocolError func(c *Conn, err *ProtocolError)
	// OnClose runs once, when the connection has ended completely. err is
	// nil when the connection was closed on purpose or the client left.
	OnClose func(c *Conn, reason wire.CloseReason, err error)
}

// Options are a Server's collaborators. Only Auth is required.
type Options struct {
	Config Config
	Logger *zap.Logger // nil: no logging
	// Sink takes pushes without a receipt that will not be written. Nil:
	// each one is logged at warn level with its session, id and reason. A
	// panic in the sink (or in a receipt's Dead) on the edge's goroutines
	// is contained like a hook's: the push it panicked on and every other
	// the connection still holds are counted lost
	// (pushfabric_connection_pushes_lost_total) and logged with their ids,
	// never handed to the sink or their receipts again.
	Sink  DeadLetterSink
	Hooks Hooks
	// Handlers answer requests by method; Fallback answers methods that
	// have no handler (nil: they are refused with code unknown_method).
	Handlers map[string]Handler
	Fallback Handler
	Auth     Authenticator
	// Registry is the node's session table; nil: the server makes its own.
	Registry *registry.Registry[Conn]
	// Node names this node to clients (in the welcome frame) and in logs.
	Node string
	// Metrics are where the server counts; nil: a private set.
	Metrics *Metrics
	// TLS, when set, has every listener the server serves speak TLS
	// (wss:// and framed TCP over TLS): the handshake runs on the
	// handshake goroutine, after a PROXY header if the source sends one,
	// within Config.HandshakeTimeout; a failed one is a handshake
	// rejection. Its GetCertificate may change the certificate while
	// serving. Nil: plain sockets.
	TLS *tls.Config
	// Pages, when set, answers plain GET requests (no Upgrade header) on
	// the WebSocket listeners for the paths it has a pattern for, within
	// the handshake's size limit and timeout (in development mode, for a
	// loopback Host only), each as an HTTP/1.1 response with Connection:
	// close; every other request that is not an upgrade is refused as
	// without it (400). Pages are served from the same origin as the
	// WebSocket, so a page served here needs no Config.WSAllowedOrigins.
	// Nil: no pages.
	Pages PageMux
}

// Server accepts connections and runs them. Create it with [NewServer],
// start it with Start, serve listeners with ServeTCP and ServeWebSocket,
// and end it with Shutdown, which also stops the goroutines Start starts.
type Server struct {
	cfg      Config
	log      *zap.Logger
	sink     DeadLetterSink
	hooks    Hooks
	handlers map[string]Handler
	fallback Handler
	auth     Authenticator
	reg      *registry.Registry[Conn]
	node     string
	sched    scheduler
	metrics  *Metrics
	hs       handshakePolicy
	proxies  proxySources    // connections from these start with a PROXY header
	limits   *nodeLimits     // the node-wide limits' state
	tls      *tls.Config     // Options.TLS; read-only
	epoch    time.Time       // the server's clock: queue times are durations since it
	baseCtx  context.Context // parent of request contexts; ends at shutdown
	stopCtx  context.CancelFunc
	wg       sync.WaitGroup // accept loops, handshakes, readers, writers of their own

	// What Shutdown ends, closed by it in this order.
	listeners tracked[net.Listener] // their accept loops
	shaking   tracked[net.Conn]     // sockets in their handshake
	conns     tracked[*Conn]
	started   atomic.Bool // set by Start
}

// NewServer validates the options and builds the server; it starts
// nothing (Start does).
func NewServer(o Options) (*Server, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, check.In("edge.Config", err)
	}
	if o.Auth == nil {
		return nil, errors.New("edge: no authenticator (use edge.DevAuth{} for loopback development)")
	}
	s := &Server{
		cfg: o.Config, log: o.Logger, sink: o.Sink, hooks: o.Hooks,
		handlers: o.Handlers, fallback: o.Fallback, auth: o.Auth,
		reg: o.Registry, node: o.Node, metrics: o.Metrics, epoch: time.Now(), tls: o.TLS,
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.sink == nil {
		s.sink = logSink{s.log}
	}
	if s.reg == nil {
		s.reg = registry.New[Conn]()
	}
	if s.node == "" {
		s.node = "edge"
	}
	if s.metrics == nil {
		s.metrics = privateMetrics()
	}
	s.hs.maxSize = s.cfg.MaxHandshakeSize
	s.hs.origins, _ = newOriginPolicy(s.cfg.WSAllowedOrigins) // checked by Validate
	s.proxies, _ = newProxySources(s.cfg.ProxyProtocol)
	s.limits = newNodeLimits(&s.cfg)
	s.hs.loopbackHosts = devMode(s.auth)
	s.hs.pages = o.Pages
	s.baseCtx, s.stopCtx = context.WithCancel(context.Background())
	return s, nil
}

// Start starts the shared flushers (Config.Flushers); the server can then
// serve. It does not block. Start returns ErrServerClosed after Shutdown,
// and an error if the server has started already; do not call it while
// Shutdown runs.
func (s *Server) Start(context.Context) error {
	switch {
	case s.listeners.isClosed():
		return ErrServerClosed
	case !s.started.CompareAndSwap(false, true):
		return errors.New("edge: the server has started already")
	}
	s.sched.start(s, s.cfg.Flushers)
	if devMode(s.auth) { // said once, before any listener serves
		s.log.Warn("DEVELOPMENT MODE: clients choose their session with no token; loopback only. Configure token authentication for real clients.")
	}
	return nil
}

// Registry is the server's session table.
func (s *Server) Registry() *registry.Registry[Conn] { return s.reg }

// ServeTCP accepts framed-TCP clients on ln until Shutdown, then returns
// ErrServerClosed. Other accept errors are returned as they are, and
// ErrNotStarted before Start. It closes ln before it returns.
func (s *Server) ServeTCP(ln net.Listener) error { return s.serve(ln, tcpFraming{}) }

// ServeWebSocket accepts WebSocket clients on ln (any path; the HTTP
// upgrade is read straight off the connection) until Shutdown, then returns
// ErrServerClosed; other errors as ServeTCP.
func (s *Server) ServeWebSocket(ln net.Listener) error { return s.serve(ln, wsFraming{}) }

func (s *Server) serve(ln net.Listener, fr framing) error {
	defer ln.Close()
	if devMode(s.auth) {
		if !isLoopback(ln.Addr()) {
			return fmt.Errorf("serve %s: development authentication serves loopback listeners only", ln.Addr())
		}
	}
	if !s.started.Load() {
		return ErrNotStarted
	}
	if !s.listeners.add(ln, &s.wg) {
		return ErrServerClosed
	}
	defer s.untrack(ln)
	s.log.Debug("listening", zap.String("transport", fr.name()), zap.Stringer("addr", ln.Addr())) // the node's start line has them all
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.listeners.isClosed() {
				return ErrServerClosed
			}
			if backoff, err = s.acceptBackoff(backoff, err); err != nil {
				return err
			}
			continue
		}
		backoff = 0
		if s.admitSocket(nc, fr) {
			s.wg.Go(func() { s.handshake(nc, fr) })
		}
	}
}

// acceptBackoff waits after a failed Accept that may pass (out of file
// descriptors, say), doubling up to a second, as net/http does.
func (s *Server) acceptBackoff(prev time.Duration, err error) (time.Duration, error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() && !isTemporary(err) {
		return 0, err
	}
	d := min(max(2*prev, 5*time.Millisecond), time.Second)
	s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("in", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.baseCtx.Done():
	}
	return d, nil
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// untrack ends an accept loop.
func (s *Server) untrack(ln net.Listener) {
	s.listeners.remove(ln)
	s.wg.Done()
}

// Shutdown stops accepting, closes every connection gracefully with reason
// shutdown (each writes what is queued for up to DrainTimeout and
// dead-letters the rest), waits for them, and stops the flushers. If ctx
// ends first, the remaining connections are ended at once, their queued
// pushes dead-lettered as shutdown, and ctx's error is returned. It is the
// server's Stop; a server that never started stops at once.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, ln := range s.listeners.close() {
		_ = ln.Close()
	}
	for _, nc := range s.shaking.close() {
		_ = nc.Close() // its handshake fails at once
	}
	conns := s.conns.close()
	for _, c := range conns {
		c.Close(wire.CloseShutdown)
	}
	var err error
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-ctx.Done():
			err = ctx.Err()
			c.terminate(push.ReasonShutdown, wire.CloseShutdown, nil)
		}
	}
	s.stopCtx()
	s.wg.Wait()
	s.sched.stop()
	return err
}

// Len is the number of open connections.
func (s *Server) Len() int { return s.conns.len() }

// newConn makes the connection for an authenticated client, with its
// welcome frame due. Its write side is held until admit: what is queued
// meanwhile (pushes it takes over, pushes from producers who find it in
// the registry) waits, so the client is welcomed only once the connect
// hook has run.
func (s *Server) newConn(nc net.Conn, remote net.Addr, fr framing, session string) *Conn {
	c := &Conn{
		srv: s, session: session, started: time.Now(), nc: nc, remote: remote,
		raw: rawConnOf(nc), fr: fr, done: make(chan struct{}),
	}
	c.in.c = c
	c.limits.fill(&s.cfg, s.now())
	if s.cfg.Rate > 0 {
		c.limiter = rate.NewLimiter(s.cfg.Rate, s.cfg.burst())
	}
	c.out.welcome = true
	return c
}

// admit makes c the holder of its session (closing a previous holder on
// this node, whose queued pushes move to c), runs the connect hook and
// starts the reader goroutine. It reports false if the server is closing.
func (s *Server) admit(c *Conn) bool {
	if !s.conns.add(c, &s.wg) {
		return false
	}
	s.metrics.sessions.Inc()
	s.setUp(c)
	c.mu.Lock()
	c.writer = writerIdle
	c.wakeWriterLocked() // the welcome frame, or the refusal
	c.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.readLoop()
	}()
	return true
}

// setUp makes c the holder of its session, closing a previous holder on
// this node, and runs the connect hook. A panic in it (in the dead-letter
// sink, say) closes c with reason protocol (recoverSetUp); its reader
// still starts, and ends it.
func (s *Server) setUp(c *Conn) {
	defer c.recoverSetUp()
	if prev := s.reg.Insert(c.session, c); prev != nil {
		prev.replaceWith(c)
	}
	refused := false
	if s.hooks.OnConnect != nil {
		if err := s.runConnectHook(c); err != nil {
			refused = true
			s.metrics.rejections[RejectRefused].Inc()
			s.log.Warn("connect hook refused the connection", zap.String("session", c.session), zap.Error(err))
			c.mu.Lock()
			c.out.welcome = false
			c.mu.Unlock()
			c.abort(wire.CloseShutdown, push.ReasonClosed)
		}
	}
	if !refused {
		s.metrics.connects.Inc()
		if ce := s.log.Check(zap.DebugLevel, "client connected"); ce != nil {
			ce.Write(zap.String("session", c.session), zap.String("transport", c.fr.name()), zap.Stringer("remote", c.remote))
		}
	}
}

// now is the time on the server's clock (monotonic).
func (s *Server) now() time.Duration { return time.Since(s.epoch) }

// forget removes an ended connection from the server and the registry,
// and gives back its session slot.
func (s *Server) forget(c *Conn) {
	s.reg.Remove(c.session, c)
	s.conns.remove(c)
	s.releaseSession()
}

// handler finds the handler for a method.
func (s *Server) handler(method string) Handler {
	if h, ok := s.handlers[method]; ok {
		return h
	}
	return s.fallback
}

// checkPush refuses frames that can never be queued or encoded.
func (s *Server) checkPush(f *Frame) error {
	if err := s.checkFrame(f); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if len(f.Payload) > s.cfg.QueueBytes {
		return fmt.Errorf("push of %d bytes is over the queue's %d: %w", len(f.Payload), s.cfg.QueueBytes, ErrFrameTooLarge)
	}
	return nil
}

// checkFrame refuses a frame that cannot be encoded or is over the frame
// size limit.
func (s *Server) checkFrame(f *Frame) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if n := f.Len(); n > s.cfg.MaxFrameSize {
		return fmt.Errorf("frame of %d bytes is over the limit of %d: %w", n, s.cfg.MaxFrameSize, ErrFrameTooLarge)
	}
	return nil
}

// deadLetterItem hands a push that will not be written to its receipt, or
// to the sink if it has none.
func (s *Server) deadLetterItem(session string, it *item, reason push.Reason) {
	dl := DeadLetter{Envelope: it.e, Session: session, Priority: it.e.Frame.Priority, Reason: reason}
	if it.e.Receipt != nil {
		it.e.Receipt.Dead(dl)
		return
	}
	s.sink.DeadLetter(dl)
}

// logSink is the sink of a server configured without one: every dead
// letter is at least in the log.
type logSink struct{ log *zap.Logger }

func (l logSink) DeadLetter(dl DeadLetter) {
	l.log.Warn("push dead-lettered with no sink configured",
		zap.String("session", dl.Session), zap.String("push_id", dl.Frame.ID),
		zap.Stringer("priority", dl.Priority), zap.String("reason", string(dl.Reason)))
}
