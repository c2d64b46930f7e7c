package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/cmd/pushhttp/httpapi"
	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/internal/natsurl"
	"github.com/pushfabric/pushfabric/internal/tlsreload"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/token"
)

// defaultListen is serve's --listen: loopback, so that nothing is
// reachable from elsewhere until told.
const defaultListen = "127.0.0.1:8088"

// serveCmd is pushhttp serve.
type serveCmd struct {
	cli.NATSFlags   `embed:""`
	Prefix          string        `default:"${prefix}" help:"Subject prefix of pushes."`
	Listen          string        `default:"${listen}" placeholder:"ADDR" help:"HTTP listen address, host:port (port 0: any free one, logged as listen)."`
	TLSCert         string        `name:"tls-cert" placeholder:"FILE" help:"PEM certificate (chain) to serve HTTPS with, with --tls-key; both files are read again when either changes (looked at once a second)."`
	TLSKey          string        `name:"tls-key" placeholder:"FILE" help:"PEM private key of --tls-cert."`
	KeysFile        string        `name:"keys-file" placeholder:"FILE" help:"API keys: one a line, name sha256-hex [target ...] (pushhttp key new writes them); read again when it has changed (a stat each request: a key added or removed counts at once) and on SIGHUP."`
	JWTSecretFile   string        `name:"jwt-secret-file" placeholder:"FILE" help:"HS256 secret (at least 32 bytes) of producer tokens: JWTs with the push scope and --jwt-audience (pushhttp token mints them); never the edge's client secret."`
	JWTAudience     string        `name:"jwt-audience" default:"${audience}" help:"The aud claim a producer token must name."`
	ProducerName    string        `name:"producer-name" default:"pushhttp" help:"Names pushhttp in the offline dead letters it writes (Push-Node) and in their acks."`
	MaxPayload      int           `name:"max-payload" default:"${maxpayload}" help:"Largest payload of one push, bytes (the edge's default --max-frame-size); larger: 413."`
	MaxBatch        int           `name:"max-batch" default:"${maxbatch}" help:"Most pushes in one batch (POST /v1/push); more: 413."`
	MaxBatchBytes   int64         `name:"max-batch-bytes" default:"${maxbatchbytes}" help:"Largest batch body, bytes; larger: 413."`
	Timeout         time.Duration `default:"${timeout}" help:"How long a push waits for its acknowledgement when the request gives no timeout parameter; then 504."`
	MaxTimeout      time.Duration `name:"max-timeout" default:"${maxtimeout}" help:"Longest timeout parameter a request may give (ack=received waits for the client application: allow for the edge's --receipt-timeout)."`
	ShutdownTimeout time.Duration `name:"shutdown-timeout" default:"30s" help:"On SIGTERM or SIGINT, how long requests in flight may take to be answered, and then the dead letters to be written."`
	LogLevel        string        `name:"log-level" default:"info" enum:"debug,info,warn,error" help:"debug (a line per push), info, warn or error."`
	LogFormat       string        `name:"log-format" default:"auto" enum:"json,console,auto" help:"json, console, or auto (console on a terminal)."`
}

// Help is shown under the command's usage.
func (c *serveCmd) Help() string {
	return "Routes: POST /v1/push/<session>/<high|low>, /v1/push/group/<group>/<high|low>, /v1/push/all/<high|low>,\n" +
		"/v1/push (a batch, JSON); GET /healthz. Query: ack=enqueued|written|received, timeout=<duration>.\n" +
		"Authorization: Bearer <key or token>; --keys-file, --jwt-secret-file or both are required. See docs/http.md."
}

// Validate refuses a server without authentication, and the limits out
// of range, by their flags.
func (c *serveCmd) Validate() error {
	if c.KeysFile == "" && c.JWTSecretFile == "" {
		return errors.New("no authentication: give --keys-file, --jwt-secret-file or both (pushhttp never serves without)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %v: want a positive duration", c.ShutdownTimeout)
	}
	flags := map[string]string{"Prefix": "--prefix", "MaxPayload": "--max-payload", "MaxBatch": "--max-batch",
		"MaxBatchBytes": "--max-batch-bytes", "Timeout": "--timeout", "MaxTimeout": "--max-timeout"}
	return check.Rename(c.config().Validate(), func(f string) string { return cmp.Or(flags[f], f) })
}

func (c *serveCmd) config() httpapi.Config {
	return httpapi.Config{Prefix: c.Prefix, MaxPayload: c.MaxPayload, MaxBatch: c.MaxBatch, MaxBatchBytes: c.MaxBatchBytes,
		Timeout: c.Timeout, MaxTimeout: c.MaxTimeout}
}

func (c *serveCmd) run() int {
	log, err := cli.Logger(c.LogLevel, c.LogFormat)
	if err != nil {
		return fail("serve", err)
	}
	defer log.Sync()
	s, err := c.start(log)
	if err != nil {
		return fail("serve", err)
	}
	return s.wait()
}

// server is a running pushhttp serve: what its shutdown stops, in order.
type server struct {
	c     *serveCmd
	log   *zap.Logger
	http  *http.Server
	p     *producer.Producer
	nc    *nats.Conn
	keys  *httpapi.KeyFile // nil without --keys-file
	spans func(context.Context) error
	ended chan error // the HTTP server's Serve; buffered, one value
}

// start checks the credentials' files, listens, connects to NATS and
// starts the producer and the HTTP server; on an error it leaves nothing
// running.
func (c *serveCmd) start(log *zap.Logger) (s *server, err error) {
	auth, keys, err := c.auth(log)
	if err != nil {
		return nil, err
	}
	ln, err := c.listen(log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	nc, err := c.Connect("pushhttp", 5*time.Second, natsEvents(log)...)
	if err != nil {
		return nil, err
	}
	s = &server{c: c, log: log, nc: nc, keys: keys, ended: make(chan error, 1)}
	if err := s.startProducer(); err != nil {
		nc.Close()
		return nil, err
	}
	h, err := httpapi.New(c.config(), nc, s.p, auth, log)
	if err != nil {
		s.stopProducer()
		return nil, err
	}
	s.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: c.MaxTimeout + 30*time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: zap.NewStdLog(log.Named("http"))}
	go func() { s.ended <- s.http.Serve(ln) }()
	log.Info("pushhttp started", zap.String("version", version.Current().Version), zap.String("listen", ln.Addr().String()),
		zap.Bool("tls", c.TLSCert != ""), zap.String("nats", natsurl.Redact(nc.ConnectedUrl())), zap.String("prefix", c.Prefix),
		zap.Bool("keys", keys != nil), zap.Bool("jwt", auth.JWT != nil))
	return s, nil
}

// auth reads the keys file and the token secret the flags name.
func (c *serveCmd) auth(log *zap.Logger) (httpapi.Auth, *httpapi.KeyFile, error) {
	var a httpapi.Auth
	if c.KeysFile != "" {
		keys, err := httpapi.OpenKeyFile(c.KeysFile, func(err error) {
			log.Error("keys file changed and does not load: the keys read before stay in use", zap.Error(err))
		})
		if err != nil {
			return a, nil, fmt.Errorf("%w (pushhttp key new --keys-file %s makes it)", err, c.KeysFile)
		}
		a.Keys = keys
	}
	if c.JWTSecretFile != "" {
		secret, err := token.ReadSecretFile(c.JWTSecretFile)
		if err != nil {
			return a, nil, err
		}
		if a.JWT, err = httpapi.NewJWTVerifier(secret, c.JWTAudience); err != nil {
			return a, nil, err
		}
	}
	return a, a.Keys, nil
}

// listen opens the listener, with TLS when the flags give a pair.
func (c *serveCmd) listen(log *zap.Logger) (net.Listener, error) {
	var cfg *tls.Config
	if c.TLSCert != "" {
		cert, err := tlsreload.New(c.TLSCert, c.TLSKey, tlsreload.Options{OnError: func(err error) {
			log.Error("TLS pair changed and does not load: the pair read before stays in use", zap.Error(err))
		}})
		if err != nil {
			return nil, err
		}
		cfg = cert.ServerConfig()
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// natsEvents are the connection options of a long-running server: it
// reconnects for ever (503 meanwhile), and says so, and says a refused
// publish (a right its NATS user lacks) without closing the connection.
func natsEvents(log *zap.Logger) []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed at shutdown
				log.Warn("NATS disconnected: pushes are refused (503) until it is back", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", zap.String("nats", natsurl.Redact(nc.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				log.Error("NATS refused: this user lacks a right (docs/deploying.md#permissions); the push it stopped is answered 504", zap.Error(err))
				return
			}
			log.Error("NATS error", zap.Error(err))
		}),
	}
}

func (s *server) startProducer() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tp, spans, err := cli.TracingFromEnv(ctx)
	if err != nil {
		return err
	}
	s.spans = spans
	s.p, err = producer.New(s.nc, producer.Options{Prefix: s.c.Prefix, Name: s.c.ProducerName, Logger: s.log, TracerProvider: tp})
	if err == nil {
		err = s.p.Start(ctx)
	}
	return err
}

// stopProducer stops the producer (its dead letters written), flushes
// the spans and closes NATS.
func (s *server) stopProducer() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.c.ShutdownTimeout)
	defer cancel()
	var err error
	if s.p != nil {
		err = s.p.Stop(ctx)
	}
	if s.spans != nil {
		_ = s.spans(ctx)
	}
	s.nc.Close()
	return err
}

// wait serves until SIGTERM or SIGINT (SIGHUP reads the keys file
// again), then shuts down: no new requests, those in flight answered,
// the producer stopped. A second signal exits at once.
func (s *server) wait() int {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	for {
		select {
		case err := <-s.ended:
			s.log.Error("HTTP server ended", zap.Error(err))
			_ = s.stopProducer()
			return 1
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				s.reloadKeys()
				continue
			}
			return s.shutdown(sig, signals)
		}
	}
}

func (s *server) reloadKeys() {
	if s.keys == nil {
		s.log.Info("SIGHUP: no keys file to read")
		return
	}
	n, err := s.keys.Reload()
	if err != nil {
		s.log.Error("SIGHUP: keys file does not load: the keys read before stay in use", zap.Error(err))
		return
	}
	s.log.Info("SIGHUP: keys file read", zap.Int("keys", n))
}

func (s *server) shutdown(sig os.Signal, signals <-chan os.Signal) int {
	s.log.Info("stopping: no new requests; those in flight are answered", zap.Stringer("signal", sig),
		zap.Duration("shutdown_timeout", s.c.ShutdownTimeout))
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.c.ShutdownTimeout)
		defer cancel()
		err := s.http.Shutdown(ctx)
		<-s.ended // http.ErrServerClosed
		stopped <- errors.Join(err, s.stopProducer())
	}()
	select {
	case err := <-stopped:
		st := s.p.Stats()
		if err != nil {
			s.log.Error("pushhttp stopped with errors", zap.Error(err))
			return 1
		}
		s.log.Info("pushhttp stopped", zap.Uint64("offline", st.Offline))
		return 0
	case sig := <-signals:
		s.log.Warn("second signal: exiting at once", zap.Stringer("signal", sig))
		return 1
	}
}
