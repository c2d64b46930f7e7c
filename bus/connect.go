package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/internal/natsauth"
	"github.com/pushfabric/pushfabric/internal/natsurl"
	"github.com/pushfabric/pushfabric/push"
)

// Conn is an edge node's NATS connection, and the embedded server when the
// node runs one. [New] builds it; Start connects; Stop drains and stops.
type Conn struct {
	// NC is the connection, set by Start; nil until then.
	NC   *nats.Conn
	id   push.Identity
	cfg  Config
	log  *zap.Logger
	opts []nats.Option // built by New
	url  string        // what Start connects to; "" for the embedded server
	// server is the embedded server, set by Start; nil when connected to
	// URLs.
	server *server.Server
	// dataLock holds the embedded server's data directory, from Start
	// until the server has stopped; nil when connected to URLs.
	dataLock *os.File
	// password is read once from cfg.PasswordFile, for the connection and
	// the embedded server.
	password string

	slowConsumers, permissionErrors, reconnects atomic.Uint64
	// drops counts what NATS dropped, message by message.
	drops *dropWatch

	events connEvents // reconnections, passed on to the dispatcher

	// up is closed once the connection is first connected; never reopened.
	up     chan struct{}
	upOnce sync.Once
	// startMu orders Start against the connect handler: it holds it while
	// it connects, so the handler learns whether the first connect failed.
	startMu sync.Mutex
	late    bool // guarded by startMu: the first connect failed and is retried (ConnectRetry)
}

// ConnStats count the connection's troubles.
type ConnStats struct {
	SlowConsumers   uint64 // times NATS began dropping a subscription's messages because the node read too slowly
	DroppedMessages uint64 // the messages it dropped so, each logged with its session (see dropWatch)
	// ServerSlowConsumers counts connections the server closed because the
	// node read too slowly; what the server held for them is lost, uncounted.
	ServerSlowConsumers uint64
	PermissionErrors    uint64 // publishes or subscriptions the server refused
	Reconnects          uint64
}

// New checks id and cfg, reads the password and NKey seed files, and
// builds the connection of node id; it neither connects nor starts a
// server (Start does). Every error says what is wrong with the
// configuration.
func New(id push.Identity, cfg Config, log *zap.Logger) (*Conn, error) {
	if err := errors.Join(id.Validate(), check.In("bus.Config", cfg.Validate())); err != nil {
		return nil, fmt.Errorf("bus config: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := &Conn{id: id, cfg: cfg, log: log, drops: newDropWatch(id.Prefix, log), up: make(chan struct{})}
	if len(cfg.URLs) > 0 {
		c.url = joinURLs(cfg.URLs)
		if err := natsurl.Check(c.url); err != nil {
			return nil, fmt.Errorf("bus config: %w", err)
		}
	}
	if cfg.PasswordFile != "" {
		var err error
		if c.password, err = natsauth.ReadPasswordFile(cfg.PasswordFile); err != nil {
			return nil, err
		}
	}
	var err error
	if c.opts, err = c.options(); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect is New and then Start.
func Connect(ctx context.Context, id push.Identity, cfg Config, log *zap.Logger) (*Conn, error) {
	c, err := New(id, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Start connects to the configured URLs, or starts the embedded server and
// connects to it in-process, within ctx: a deadline nearer than nats.go's
// dial timeout (2 s) shortens it. The embedded server's data directory is
// locked first: if another process holds it, Start fails with
// [ErrDataDirLocked] before anything opens the store. With ConnectRetry,
// URLs that cannot be reached do not fail Start: it returns with the
// connection retrying (see [Conn.Connected]). The connection reconnects
// without limit and never receives its own messages (a forwarded push
// does not come back). If Start fails, nothing it started is left
// running. Call it once.
func (c *Conn) Start(ctx context.Context) error {
	if c.NC != nil {
		return errors.New("bus: the connection is started already")
	}
	opts := c.opts[:len(c.opts):len(c.opts)] // appended to, c.opts stays as it is
	if c.url == "" {
		lock, err := lockDataDir(c.cfg.Embedded.DataDir, c.cfg.Embedded.Listen)
		if err != nil {
			return err
		}
		c.dataLock = lock
		s, err := startEmbedded(ctx, c.id.Node, c.cfg, c.password, c.log)
		if err != nil {
			c.stopEmbedded()
			return err
		}
		c.server = s
		noteServer(lock, s.ClientURL())
		opts = append(opts, nats.InProcessServer(s))
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(min(nats.DefaultTimeout, time.Until(dl))))
	}
	c.startMu.Lock()
	defer c.startMu.Unlock()
	nc, err := nats.Connect(c.url, opts...)
	if err != nil {
		c.stopEmbedded()
		return fmt.Errorf("connect to nats %s: %w", c.URL(), err)
	}
	c.NC = nc
	c.drops.start(nc, c.server)
	if c.late = !nc.IsConnected(); c.late {
		c.log.Warn("nats is not reachable; retrying: the node is not ready until it connects", zap.String("url", c.URL()))
	} else {
		c.markUp()
	}
	return nil
}

// Connected is closed once the connection has first connected: when
// Start returns, unless ConnectRetry left it retrying. It is never
// reopened; whether the connection is up now is NC.IsConnected.
func (c *Conn) Connected() <-chan struct{} { return c.up }

func (c *Conn) markUp() { c.upOnce.Do(func() { close(c.up) }) }

// connected runs on the connection's callback goroutine when it first
// connects. After a first connect that failed and was retried, it does
// what a reconnection does: the dispatcher announces its sessions (it
// has none: it took no clients) and the drop watch looks again.
func (c *Conn) connected(nc *nats.Conn) {
	c.startMu.Lock()
	late := c.late
	c.startMu.Unlock()
	if !late {
		return
	}
	c.markUp()
	c.events.reconnected()
	c.drops.reconnected(nc)
	c.log.Info("nats connected", zap.String("url", natsurl.Redact(nc.ConnectedUrl())))
}

// Identity is the node's prefix and name.
func (c *Conn) Identity() push.Identity { return c.id }

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

func (c *Conn) options() ([]nats.Option, error) {
	cfg := c.cfg
	opts := []nats.Option{
		nats.Name("pushfabric edge " + c.id.Node),
		nats.MaxReconnects(-1),
		nats.PingInterval(cfg.PingInterval),
		nats.NoEcho(),
		nats.ErrorHandler(c.onAsyncError),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.reconnects.Add(1)
			c.events.reconnected()
			c.drops.reconnected(nc)
			c.log.Info("nats reconnected", zap.String("url", natsurl.Redact(nc.ConnectedUrl())))
		}),
		nats.ConnectHandler(c.connected),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("nats disconnected", zap.Error(err))
			}
		}),
	}
	if cfg.ConnectRetry && c.url != "" {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	auth, err := natsauth.Credentials{
		CredsFile: cfg.CredsFile, NKeySeedFile: cfg.NKeySeedFile, Token: cfg.Token, User: cfg.User, Password: c.password,
		TLSCA: cfg.TLSCA, TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey,
	}.Options()
	if err != nil {
		return nil, err
	}
	return append(opts, auth...), nil
}

// onAsyncError counts what NATS reports outside any call.
func (c *Conn) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	switch {
	case errors.Is(err, nats.ErrSlowConsumer) && sub != nil:
		c.slowConsumers.Add(1)
		c.drops.watch(sub) // counted and logged by the sweeper
	case errors.Is(err, nats.ErrSlowConsumer):
		c.slowConsumers.Add(1)
		c.log.Error("nats slow consumer: pushes were dropped by NATS")
	case isConnzRefusal(err):
		c.log.Debug("why nats closes a connection is not this node's to ask", zap.Error(err))
	case errors.Is(err, nats.ErrPermissionViolation):
		c.permissionErrors.Add(1)
		c.log.Error("nats permission violation", zap.String("subject", subject), zap.Error(err))
	default:
		c.log.Warn("nats error", zap.String("subject", subject), zap.Error(err))
	}
}

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats {
	return ConnStats{SlowConsumers: c.slowConsumers.Load(), DroppedMessages: c.drops.dropped.Load(),
		ServerSlowConsumers: c.drops.serverSlow.Load(), PermissionErrors: c.permissionErrors.Load(), Reconnects: c.reconnects.Load()}
}

// Embedded reports whether the node runs its own NATS server.
func (c *Conn) Embedded() bool { return c.server != nil }

// URL is where producers and the nats CLI reach this node's NATS, with
// any credentials in it shown as [REDACTED]: it is safe to log or print.
// For an embedded server not started yet it is the configured address.
func (c *Conn) URL() string {
	switch {
	case c.server != nil:
		return c.server.ClientURL()
	case c.url == "":
		return "nats://" + c.cfg.Embedded.Listen
	}
	return natsurl.Redact(c.url)
}

// Stop drains the connection (what is buffered is sent) and then shuts the
// embedded server down, waiting for both within ctx; if ctx ends first the
// connection is closed at once, the server still shut down, and ctx's
// error returned. Stopping a Conn that never started does nothing.
func (c *Conn) Stop(ctx context.Context) error {
	var err error
	if c.NC != nil {
		closed := make(chan struct{})
		c.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if derr := c.NC.Drain(); derr != nil {
			c.NC.Close()
		} else {
			select {
			case <-closed:
			case <-ctx.Done():
				c.NC.Close()
				err = fmt.Errorf("drain nats: %w", ctx.Err())
			}
		}
		c.drops.close()
	}
	c.stopEmbedded()
	return err
}

// stopEmbedded shuts the embedded server down, if it runs, and then
// lets go of its data directory.
func (c *Conn) stopEmbedded() {
	if c.server != nil {
		c.server.Shutdown()
		c.server.WaitForShutdown()
	}
	if c.dataLock != nil {
		_ = c.dataLock.Close()
		c.dataLock = nil
	}
}

// startEmbedded starts a JetStream server named node on
// cfg.Embedded.Listen (port 0: any free port). With cfg.User set it lets
// in that user, with password, and no one else.
func startEmbedded(ctx context.Context, node string, cfg Config, password string, log *zap.Logger) (*server.Server, error) {
	host, portStr, _ := net.SplitHostPort(cfg.Embedded.Listen)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server's own 0 is its default port, 4222
	}
	opts := &server.Options{
		ServerName: node,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.Embedded.DataDir,
		NoSigs:     true,
		Username:   cfg.User,
		Password:   password,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	sl := &serverLog{log: log.Named("nats-server")}
	s.SetLoggerV2(sl, false, false, false)
	go s.Start()
	for !s.ReadyForConnections(50 * time.Millisecond) {
		if err := sl.fatal.Load(); err != nil {
			s.Shutdown()
			s.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats on %s: %s", cfg.Embedded.Listen, *err)
		}
		if ctx.Err() != nil {
			s.Shutdown()
			s.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats on %s did not start: %w", cfg.Embedded.Listen, ctx.Err())
		}
	}
	return s, nil
}

// serverLog sends the embedded server's log to zap. A fatal error (the
// port is taken, say) is recorded for startEmbedded instead of exiting.
type serverLog struct {
	log   *zap.Logger
	fatal atomic.Pointer[string]
}

const serverLogMsg = "embedded nats-server"

func (l *serverLog) Noticef(f string, v ...any) { l.log.Debug(serverLogMsg, text(f, v)) }
func (l *serverLog) Warnf(f string, v ...any)   { l.log.Warn(serverLogMsg, text(f, v)) }
func (l *serverLog) Errorf(f string, v ...any)  { l.log.Error(serverLogMsg, text(f, v)) }
func (l *serverLog) Debugf(f string, v ...any)  { l.log.Debug(serverLogMsg, text(f, v)) }
func (l *serverLog) Tracef(f string, v ...any)  { l.log.Debug(serverLogMsg, text(f, v)) }
func (l *serverLog) Fatalf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	l.fatal.CompareAndSwap(nil, &msg)
	l.log.Error(serverLogMsg, zap.String("text", msg))
}

func text(f string, v []any) zap.Field { return zap.String("text", fmt.Sprintf(f, v...)) }
