package main

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge"
)

// envPrefix starts the environment variable of every edge flag:
// PUSHFABRIC_<FLAG>, --nats-url being PUSHFABRIC_NATS_URL. The client
// tools have their own (PUSHCTL_, PUSHBENCH_).
const envPrefix = "PUSHFABRIC"

// edgeFlags is the edge's command line. Each group fills a part of
// app.Config (apply); its defaults are app.DefaultConfig's (defaults).
type edgeFlags struct {
	Version kong.VersionFlag `env:"-" help:"Print the version and exit."`
	listenFlags
	natsFlags
	dlqFlags
	connFlags
	LogLevel   string `name:"log-level" default:"info" enum:"debug,info,warn,error" help:"debug, info, warn or error."`
	LogFormat  string `name:"log-format" default:"auto" enum:"json,console,auto" help:"json, console, or auto (console on a terminal)."`
	Quickstart bool   `name:"quickstart" help:"Print how to connect a client and send a push once started."`
}

// listenFlags are the listeners and client authentication.
type listenFlags struct {
	WSListen         string `name:"ws-listen" default:"${WSListen}" help:"WebSocket listen address; empty: none."`
	TCPListen        string `name:"tcp-listen" default:"${TCPListen}" help:"framed-TCP listen address; empty: none."`
	AdminListen      string `name:"admin-listen" default:"${AdminListen}" help:"admin listen address (/metrics, /healthz, /readyz); empty: none."`
	Pprof            bool   `name:"pprof" help:"Also serve Go profiles (/debug/pprof/) on the admin listener; off loopback only with --allow-open-pprof."`
	AllowOpenPprof   bool   `name:"allow-open-pprof" help:"Let --pprof serve profiles and the command line on an admin listener off loopback, to anyone who reaches it (logged as a warning)."`
	JWTSecretFile    string `name:"jwt-secret-file" placeholder:"FILE" help:"File holding the HS256 secret clients' tokens are signed with (at least 32 bytes)."`
	JWTPublicKeyFile string `name:"jwt-public-key-file" placeholder:"FILE" help:"PEM public key (RSA: RS256, Ed25519: EdDSA) clients' tokens are checked with."`
}

// natsFlags are the NATS connection, the embedded server and the node's
// identity.
type natsFlags struct {
	NATSURL          string        `name:"nats-url" placeholder:"URLS" help:"NATS server URLs, comma-separated; empty: start an embedded server."`
	NATSConnectRetry bool          `name:"nats-connect-retry" help:"When --nats-url cannot be reached at start, start anyway and keep trying: the node is not ready (/readyz 503) and takes no clients until NATS is there (for orchestrators); off: exit at once."`
	NATSCreds        string        `name:"nats-creds" placeholder:"FILE" help:"NATS credentials (.creds) file."`
	NATSNKey         string        `name:"nats-nkey" placeholder:"FILE" help:"NATS NKey seed file."`
	NATSToken        string        `name:"nats-token" placeholder:"TOKEN" help:"NATS authentication token; [REDACTED] in the --pprof command line, but ps shows it: prefer the environment variable."`
	NATSUser         string        `name:"nats-user" placeholder:"USER" help:"NATS user, with --nats-password-file: the node connects as this user; the embedded server lets in this user only."`
	NATSPasswordFile string        `name:"nats-password-file" placeholder:"FILE" help:"File holding the --nats-user password (plain text; surrounding white space is ignored)."`
	NATSTLSCA        string        `name:"nats-tls-ca" placeholder:"FILE" help:"CA bundle to trust for NATS TLS."`
	NATSTLSCert      string        `name:"nats-tls-cert" placeholder:"FILE" help:"Client certificate for NATS TLS."`
	NATSTLSKey       string        `name:"nats-tls-key" placeholder:"FILE" help:"Client key for NATS TLS."`
	NATSListen       string        `name:"nats-listen" default:"${NATSListen}" help:"Where the embedded NATS server listens (for producers and the nats CLI; port 0: any free port); off loopback only with --nats-user or --allow-open-nats."`
	AllowOpenNATS    bool          `name:"allow-open-nats" help:"Let the embedded NATS server listen off loopback with no --nats-user: anyone who reaches it reads every push and can forge takeovers (logged as a warning)."`
	DataDir          string        `name:"data-dir" default:"${DataDir}" help:"The embedded NATS server's JetStream storage."`
	RedeliverOffline bool          `name:"redeliver-offline" help:"When a session connects, or NATS comes back under it, deliver its offline dead letters first, oldest first, deleting each once written."`
	DispatchBuffer   int           `name:"dispatch-buffer" default:"${DispatchBuffer}" help:"Pushes received from NATS and not yet handed to their session, per dispatch lane (one lane per core); what does not fit NATS drops, counted in pushfabric_nats_dropped_messages_total."`
	HandoverTimeout  time.Duration `name:"handover-timeout" default:"${HandoverTimeout}" help:"A push handed to the node that took its session is dead-lettered replaced when that node has not answered within this long."`
	Prefix           string        `name:"prefix" default:"${Prefix}" help:"Subject prefix: pushes are published to <prefix>.<session>.high|low."`
	Node             string        `name:"node" help:"This node's name, in acks, dead letters and takeovers; unique per node (default: host name and process id)."`
}

// dlqFlags are the dead-letter stream's limits.
type dlqFlags struct {
	DLQMaxAge        time.Duration `name:"dlq-max-age" default:"${DLQMaxAge}" help:"How long dead letters are kept."`
	DLQMaxBytes      int64         `name:"dlq-max-bytes" default:"${DLQMaxBytes}" help:"Size limit of the dead-letter stream; the oldest go first."`
	DLQMaxPerSubject int64         `name:"dlq-max-per-subject" default:"${DLQMaxPerSubject}" help:"Dead letters kept per reason, session and priority."`
	DLQReplicas      int           `name:"dlq-replicas" default:"${DLQReplicas}" help:"Replicas of the dead-letter stream (3 in a cluster)."`
}

// connFlags are the client connections' and requests' limits.
type connFlags struct {
	QueueLen           int           `name:"queue-len" default:"${QueueLen}" help:"Pushes queued per connection and priority."`
	QueueBytes         int           `name:"queue-bytes" default:"${QueueBytes}" help:"Payload bytes queued per connection and priority."`
	MaxHighBeforeLow   int           `name:"max-high-before-low" default:"${MaxHighBeforeLow}" help:"High pushes in a row before a waiting low one goes out; 0 with no --fairness-slice: strict priority."`
	FairnessSlice      time.Duration `name:"fairness-slice" default:"${FairnessSlice}" help:"A run of high pushes this long lets a waiting low one out; 0: off."`
	Rate               float64       `name:"rate" default:"${Rate}" help:"Pushes written per second per connection; 0: no limit."`
	Burst              int           `name:"burst" default:"${Burst}" help:"Rate limit burst; 0: one second's worth."`
	Flushers           int           `name:"flushers" default:"${Flushers}" help:"Shared writer goroutines; 0: one per busy connection."`
	DrainTimeout       time.Duration `name:"drain-timeout" default:"${DrainTimeout}" help:"How long a closing connection keeps writing what is queued."`
	WriteTimeout       time.Duration `name:"write-timeout" default:"${WriteTimeout}" help:"A client that takes no bytes for this long is closed (too_slow)."`
	HandshakeTimeout   time.Duration `name:"handshake-timeout" default:"${HandshakeTimeout}" help:"Time allowed to connect and authenticate."`
	MaxHandshakeSize   int           `name:"max-handshake-size" default:"${MaxHandshakeSize}" help:"Largest WebSocket upgrade request (request line and headers) or TCP hello, bytes; over: 431 or close protocol."`
	WSAllowedOrigins   []string      `name:"ws-allowed-origins" placeholder:"ORIGINS" help:"Web origins (scheme://host[:port], comma-separated; * for any) whose pages may open WebSocket connections besides the edge's own; clients that send no Origin (not browsers) are always let in; empty: same origin only; in development mode the upgrade's Host must be loopback or localhost too (no DNS rebinding)."`
	PingInterval       time.Duration `name:"ping-interval" default:"${PingInterval}" help:"Ping a client not heard from for this long."`
	IdleTimeout        time.Duration `name:"idle-timeout" default:"${IdleTimeout}" help:"Close a client not heard from for this long."`
	MaxFrameSize       int           `name:"max-frame-size" default:"${MaxFrameSize}" help:"Largest frame either way, bytes."`
	MaxRequests        int           `name:"max-requests" default:"${MaxRequests}" help:"Concurrent requests per connection (over: error too_many_requests)."`
	StreamBuffer       int           `name:"stream-buffer" default:"${StreamBuffer}" help:"Response frames of one request queued for the client's socket."`
	RequestTimeout     time.Duration `name:"request-timeout" default:"${RequestTimeout}" help:"A request forwarded to req.<prefix>.<method> ends with timeout after this long without a reply."`
	RequestBuffer      int           `name:"request-buffer" default:"${RequestBuffer}" help:"Replies held per request beyond --stream-buffer while the client is behind; over: too_slow."`
	RequestBufferBytes int           `name:"request-buffer-bytes" default:"${RequestBufferBytes}" help:"Reply bytes held per request while the client is behind; over: too_slow."`
}

// Validate checks every origin of --ws-allowed-origins; an empty one (a
// trailing comma) is dropped.
func (c *connFlags) Validate() error {
	var keep []string
	for _, o := range c.WSAllowedOrigins {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if err := edge.CheckOrigin(o); err != nil {
			return fmt.Errorf("--ws-allowed-origins: %w", err)
		}
		keep = append(keep, o)
	}
	c.WSAllowedOrigins = keep
	return nil
}

// defaults are the kong variables the flags' default tags name: each
// field's value in a flag set made from c.
func defaults(c app.Config) kong.Vars {
	var f edgeFlags
	f.listenFlags, f.natsFlags, f.dlqFlags, f.connFlags = fromListen(c), fromNATS(c), fromDLQ(c), fromConn(c)
	vars := kong.Vars{}
	for _, group := range []any{f.listenFlags, f.natsFlags, f.dlqFlags, f.connFlags} {
		v := reflect.ValueOf(group)
		for i := range v.NumField() {
			vars[v.Type().Field(i).Name] = fmt.Sprint(v.Field(i).Interface())
		}
	}
	return vars
}

func fromListen(c app.Config) listenFlags {
	return listenFlags{WSListen: c.WSListen, TCPListen: c.TCPListen, AdminListen: c.AdminListen}
}

func fromNATS(c app.Config) natsFlags {
	return natsFlags{NATSListen: c.Bus.Embedded.Listen, DataDir: c.Bus.Embedded.DataDir, DispatchBuffer: c.Bus.DispatchBuffer,
		HandoverTimeout: c.Bus.HandoverTimeout, Prefix: c.Identity.Prefix}
}

func fromDLQ(c app.Config) dlqFlags {
	s := c.Stream
	return dlqFlags{DLQMaxAge: s.MaxAge, DLQMaxBytes: s.MaxBytes, DLQMaxPerSubject: s.MaxMsgsPerSubject, DLQReplicas: s.Replicas}
}

func fromConn(c app.Config) connFlags {
	e := c.Edge
	return connFlags{QueueLen: e.QueueLen, QueueBytes: e.QueueBytes, MaxHighBeforeLow: e.MaxHighBeforeLow, FairnessSlice: e.FairnessSlice,
		Rate: float64(e.Rate), Burst: e.Burst, Flushers: e.Flushers, DrainTimeout: e.DrainTimeout, WriteTimeout: e.WriteTimeout,
		HandshakeTimeout: e.HandshakeTimeout, MaxHandshakeSize: e.MaxHandshakeSize, PingInterval: e.PingInterval,
		IdleTimeout: e.IdleTimeout, MaxFrameSize: e.MaxFrameSize, MaxRequests: e.MaxRequests, StreamBuffer: e.StreamBuffer,
		RequestTimeout: c.Bus.RequestTimeout, RequestBuffer: c.Bus.RequestBuffer, RequestBufferBytes: c.Bus.RequestBufferBytes}
}

// apply sets the flags into c.
func (f *edgeFlags) apply(c *app.Config) {
	l := f.listenFlags
	c.WSListen, c.TCPListen, c.AdminListen, c.Pprof, c.AllowOpenPprof = l.WSListen, l.TCPListen, l.AdminListen, l.Pprof, l.AllowOpenPprof
	c.JWTSecretFile, c.JWTPublicKeyFile = l.JWTSecretFile, l.JWTPublicKeyFile
	f.natsFlags.apply(c)
	d := f.dlqFlags
	c.Stream.MaxAge, c.Stream.MaxBytes, c.Stream.MaxMsgsPerSubject, c.Stream.Replicas = d.DLQMaxAge, d.DLQMaxBytes, d.DLQMaxPerSubject, d.DLQReplicas
	f.connFlags.apply(c)
}

func (n *natsFlags) apply(c *app.Config) {
	b := &c.Bus
	if n.NATSURL != "" {
		b.URLs = strings.Split(n.NATSURL, ",")
	}
	b.ConnectRetry = n.NATSConnectRetry
	b.CredsFile, b.NKeySeedFile, b.Token, b.User, b.PasswordFile = n.NATSCreds, n.NATSNKey, n.NATSToken, n.NATSUser, n.NATSPasswordFile
	b.TLSCA, b.TLSCert, b.TLSKey = n.NATSTLSCA, n.NATSTLSCert, n.NATSTLSKey
	b.Embedded.Listen, b.Embedded.DataDir, c.AllowOpenNATS = n.NATSListen, n.DataDir, n.AllowOpenNATS
	b.RedeliverOffline, b.DispatchBuffer, b.HandoverTimeout = n.RedeliverOffline, n.DispatchBuffer, n.HandoverTimeout
	c.Identity.Prefix = n.Prefix
	if n.Node != "" {
		c.Identity.Node = n.Node
	}
}

func (k *connFlags) apply(c *app.Config) {
	e := &c.Edge
	e.QueueLen, e.QueueBytes, e.MaxHighBeforeLow, e.FairnessSlice = k.QueueLen, k.QueueBytes, k.MaxHighBeforeLow, k.FairnessSlice
	e.Rate, e.Burst, e.Flushers = rate.Limit(k.Rate), k.Burst, k.Flushers
	e.DrainTimeout, e.WriteTimeout, e.HandshakeTimeout, e.MaxHandshakeSize = k.DrainTimeout, k.WriteTimeout, k.HandshakeTimeout, k.MaxHandshakeSize
	e.WSAllowedOrigins, e.PingInterval, e.IdleTimeout = k.WSAllowedOrigins, k.PingInterval, k.IdleTimeout
	e.MaxFrameSize, e.MaxRequests, e.StreamBuffer = k.MaxFrameSize, k.MaxRequests, k.StreamBuffer
	c.Bus.RequestTimeout, c.Bus.RequestBuffer, c.Bus.RequestBufferBytes = k.RequestTimeout, k.RequestBuffer, k.RequestBufferBytes
}

// secretFlag says which of the edge's flags hold a secret, for the
// command line /debug/pprof/cmdline shows.
func secretFlag(name string) bool { return name == "nats-token" }
