package main

import (
	"cmp"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/internal/check"
)

// envPrefix starts the environment variable of every edge flag:
// PUSHFABRIC_<FLAG>, --nats-url being PUSHFABRIC_NATS_URL. The client
// tools have their own (PUSHCTL_, PUSHBENCH_).
const envPrefix = "PUSHFABRIC"

// edgeFlags is the edge's command line. Each group fills a part of
// app.Config (apply); its defaults are app.DefaultConfig's (defaults).
type edgeFlags struct {
	Version kong.VersionFlag `env:"-" help:"Print the version and exit."`
	Config  kong.ConfigFlag  `name:"config" placeholder:"FILE" help:"A YAML (or JSON) file of flags, each key a flag's name (queue-len: 1024); the command line and the environment win over it."`
	listenFlags
	natsFlags
	dlqFlags
	connFlags
	limitFlags
	LogLevel   string `name:"log-level" default:"info" enum:"debug,info,warn,error" help:"debug, info, warn or error."`
	LogFormat  string `name:"log-format" default:"auto" enum:"json,console,auto" help:"json, console, or auto (console on a terminal)."`
	Quickstart bool   `name:"quickstart" help:"Print how to connect a client and send a push once started."`
}

// listenFlags are the listeners and client authentication.
type listenFlags struct {
	WSListen         string        `config:"WSListen" name:"ws-listen" default:"${WSListen}" help:"WebSocket listen address; empty: none."`
	TCPListen        string        `config:"TCPListen" name:"tcp-listen" default:"${TCPListen}" help:"framed-TCP listen address; empty: none."`
	AdminListen      string        `config:"AdminListen" name:"admin-listen" default:"${AdminListen}" help:"admin listen address (/metrics, /healthz, /readyz, /sessions); empty: none."`
	Pprof            bool          `config:"Pprof" name:"pprof" help:"Also serve Go profiles (/debug/pprof/) on the admin listener; off loopback only with --allow-open-pprof."`
	AllowOpenPprof   bool          `config:"AllowOpenPprof" name:"allow-open-pprof" help:"Let --pprof serve profiles and the command line on an admin listener off loopback, to anyone who reaches it (logged as a warning)."`
	JWTSecretFile    string        `config:"JWTSecretFile" name:"jwt-secret-file" placeholder:"FILE" help:"File holding the HS256 secret clients' tokens are signed with (at least 32 bytes)."`
	DrainDelay       time.Duration `config:"DrainDelay" name:"drain-delay" default:"${DrainDelay}" help:"On SIGTERM, how long the node stays up not ready (/readyz 503) before it closes its clients, so that load balancers stop sending it new ones first: at least their check interval times fall count (deployments/haproxy: 1 s × 2)."`
	ProxyProtocol    []string      `config:"Edge.ProxyProtocol" name:"proxy-protocol" placeholder:"CIDRS" help:"Sources (networks or addresses, comma-separated: the load balancers) whose client connections start with a PROXY protocol v2 header naming the client, as HAProxy's send-proxy-v2 sends; a connection from one without it is refused; empty: none."`
	JWTPublicKeyFile string        `config:"JWTPublicKeyFile" name:"jwt-public-key-file" placeholder:"FILE" help:"PEM public key (RSA: RS256, Ed25519: EdDSA) clients' tokens are checked with."`
	JWTKeys          string        `config:"JWTKeysDir" name:"jwt-keys" placeholder:"DIR" help:"Directory of the keys clients' tokens are checked with, several at once (rotation): each file one key whose id (the token's kid) is its name without .pem, a PEM public key (RS256, EdDSA) or an HS256 secret; a token without a kid is tried with each key of its algorithm. Read again when it changes (looked at every 2 s), the keys in use kept if the new set does not load."`
	JWTJWKS          string        `config:"JWTJWKSFile" name:"jwt-jwks" placeholder:"FILE" help:"JWKS file (RFC 7517) of the keys clients' tokens are checked with, by kid: RSA, OKP Ed25519 and oct (HS256) keys; with --jwt-keys or alone. Read again when it changes, as --jwt-keys."`
	JWTAudience      string        `config:"JWTAudience" name:"jwt-audience" placeholder:"AUD" help:"Refuse tokens whose aud claim does not name AUD; empty: aud is not checked."`
	JWTIssuer        string        `config:"JWTIssuer" name:"jwt-issuer" placeholder:"ISS" help:"Refuse tokens whose iss claim is not ISS; empty: iss is not checked."`
	TLSCert          string        `config:"TLSCert" name:"tls-cert" placeholder:"FILE" help:"PEM certificate (chain) for TLS on the client listeners, with --tls-key: WebSocket becomes wss://, framed TCP speaks TLS (1.2 at least); both files are read again when either changes (looked at once a second), the last good pair kept if the new one does not load."`
	TLSKey           string        `config:"TLSKey" name:"tls-key" placeholder:"FILE" help:"PEM private key of --tls-cert."`
	Demo             bool          `config:"Demo" name:"demo" help:"Serve the demo page, for trying things out, at /demo/ on the WebSocket listener (same origin as its WebSocket: connect as a session with ?token=…, or ?session=… in development mode; watch pushes, receipts, a streamed request); off, /demo/ is refused as any request that is not a WebSocket upgrade. make run turns it on."`
	AdminTLS         bool          `config:"AdminTLS" name:"admin-tls" help:"Serve the admin listener over HTTPS too, with --tls-cert and --tls-key (probes and Prometheus then scrape https://)."`
}

// natsFlags are the NATS connection, the embedded server and the node's
// identity.
type natsFlags struct {
	NATSURL          string        `config:"Bus.URLs" name:"nats-url" placeholder:"URLS" help:"NATS server URLs, comma-separated; empty: start an embedded server."`
	NATSConnectRetry bool          `config:"Bus.ConnectRetry" name:"nats-connect-retry" help:"When --nats-url cannot be reached at start, start anyway and keep trying: the node is not ready (/readyz 503) and takes no clients until NATS is there (for orchestrators); off: exit at once."`
	NATSCreds        string        `config:"Bus.CredsFile" name:"nats-creds" placeholder:"FILE" help:"NATS credentials (.creds) file."`
	NATSNKey         string        `config:"Bus.NKeySeedFile" name:"nats-nkey" placeholder:"FILE" help:"NATS NKey seed file."`
	NATSToken        string        `config:"Bus.Token" name:"nats-token" placeholder:"TOKEN" help:"NATS authentication token; [REDACTED] in the --pprof command line, but ps shows it: prefer the environment variable."`
	NATSUser         string        `config:"Bus.User" name:"nats-user" placeholder:"USER" help:"NATS user, with --nats-password-file: the node connects as this user; the embedded server lets in this user only."`
	NATSPasswordFile string        `config:"Bus.PasswordFile" name:"nats-password-file" placeholder:"FILE" help:"File holding the --nats-user password (plain text; surrounding white space is ignored)."`
	NATSTLSCA        string        `config:"Bus.TLSCA" name:"nats-tls-ca" placeholder:"FILE" help:"CA bundle to trust for NATS TLS."`
	NATSTLSCert      string        `config:"Bus.TLSCert" name:"nats-tls-cert" placeholder:"FILE" help:"Client certificate for NATS TLS."`
	NATSTLSKey       string        `config:"Bus.TLSKey" name:"nats-tls-key" placeholder:"FILE" help:"Client key for NATS TLS."`
	NATSInboxPrefix  string        `config:"Bus.InboxPrefix" name:"nats-inbox-prefix" placeholder:"PREFIX" help:"Prefix of the node's own NATS reply subjects (JetStream calls) instead of _INBOX, so NATS permissions can keep them from other roles (deployments/nats: _INBOX_edge)."`
	NATSListen       string        `config:"Bus.Embedded.Listen" name:"nats-listen" default:"${NATSListen}" help:"Where the embedded NATS server listens (for producers and the nats CLI; port 0: any free port); off loopback only with --nats-user or --allow-open-nats."`
	AllowOpenNATS    bool          `config:"AllowOpenNATS" name:"allow-open-nats" help:"Let the embedded NATS server listen off loopback with no --nats-user: anyone who reaches it reads every push and can forge takeovers (logged as a warning)."`
	DataDir          string        `config:"Bus.Embedded.DataDir" name:"data-dir" default:"${DataDir}" help:"The embedded NATS server's JetStream storage."`
	RedeliverOffline bool          `config:"Bus.RedeliverOffline" name:"redeliver-offline" help:"When a session connects, or NATS comes back under it, deliver its offline dead letters first, oldest first, deleting each once written."`
	DispatchBuffer   int           `config:"Bus.DispatchBuffer" name:"dispatch-buffer" default:"${DispatchBuffer}" help:"Pushes received from NATS and not yet handed to their session, per dispatch lane (one lane per core); what does not fit NATS drops, counted in pushfabric_nats_dropped_messages_total."`
	FanoutBacklog    int           `config:"Bus.FanoutBacklog" name:"fanout-backlog" default:"${FanoutBacklog}" help:"Member copies of group pushes taken from NATS and not yet queued to their members, per dispatch lane; a group push that does not fit is dead-lettered queue_full for the group (none of this node's members get it), counted in pushfabric_group_overflows_total."`
	HandoverTimeout  time.Duration `config:"Bus.HandoverTimeout" name:"handover-timeout" default:"${HandoverTimeout}" help:"A push handed to the node that took its session is dead-lettered replaced when that node has not answered within this long."`
	Prefix           string        `config:"Identity.Prefix" name:"prefix" default:"${Prefix}" help:"Subject prefix: pushes are published to <prefix>.<session>.high|low."`
	Node             string        `config:"Identity.Node,ifset" name:"node" help:"This node's name, in acks, dead letters and takeovers; unique per node (default: host name and process id)."`
}

// dlqFlags are the dead-letter stream's limits.
type dlqFlags struct {
	DLQMaxAge        time.Duration `config:"Stream.MaxAge" name:"dlq-max-age" default:"${DLQMaxAge}" help:"How long dead letters are kept."`
	DLQMaxBytes      int64         `config:"Stream.MaxBytes" name:"dlq-max-bytes" default:"${DLQMaxBytes}" help:"Size limit of the dead-letter stream; the oldest go first."`
	DLQMaxPerSubject int64         `config:"Stream.MaxMsgsPerSubject" name:"dlq-max-per-subject" default:"${DLQMaxPerSubject}" help:"Dead letters kept per reason, session and priority."`
	DLQReplicas      int           `config:"Stream.Replicas" name:"dlq-replicas" default:"${DLQReplicas}" help:"Replicas of the dead-letter stream, 1 to 5; 0: an existing stream keeps its own, a new one gets 3 where the NATS cluster can place them, else 1."`
}

// connFlags are the client connections' and requests' limits.
type connFlags struct {
	QueueLen           int           `config:"Edge.QueueLen" name:"queue-len" default:"${QueueLen}" help:"Pushes queued per connection and priority."`
	QueueBytes         int           `config:"Edge.QueueBytes" name:"queue-bytes" default:"${QueueBytes}" help:"Payload bytes queued per connection and priority."`
	MaxHighBeforeLow   int           `config:"Edge.MaxHighBeforeLow" name:"max-high-before-low" default:"${MaxHighBeforeLow}" help:"High pushes in a row before a waiting low one goes out; 0 with no --fairness-slice: strict priority."`
	FairnessSlice      time.Duration `config:"Edge.FairnessSlice" name:"fairness-slice" default:"${FairnessSlice}" help:"A run of high pushes this long lets a waiting low one out; 0: off."`
	Rate               float64       `config:"Edge.Rate" name:"rate" default:"${Rate}" help:"Pushes written per second per connection; 0: no limit."`
	Burst              int           `config:"Edge.Burst" name:"burst" default:"${Burst}" help:"Rate limit burst; 0: one second's worth."`
	Flushers           int           `config:"Edge.Flushers" name:"flushers" default:"${Flushers}" help:"Shared writer goroutines; 0: one per busy connection."`
	DrainTimeout       time.Duration `config:"Edge.DrainTimeout" name:"drain-timeout" default:"${DrainTimeout}" help:"How long a closing connection keeps writing what is queued."`
	WriteTimeout       time.Duration `config:"Edge.WriteTimeout" name:"write-timeout" default:"${WriteTimeout}" help:"A client that takes no bytes for this long is closed (too_slow)."`
	HandshakeTimeout   time.Duration `config:"Edge.HandshakeTimeout" name:"handshake-timeout" default:"${HandshakeTimeout}" help:"Time allowed to connect and authenticate."`
	MaxHandshakeSize   int           `config:"Edge.MaxHandshakeSize" name:"max-handshake-size" default:"${MaxHandshakeSize}" help:"Largest WebSocket upgrade request (request line and headers) or TCP hello, bytes; over: 431 or close protocol."`
	WSAllowedOrigins   []string      `config:"Edge.WSAllowedOrigins" name:"ws-allowed-origins" placeholder:"ORIGINS" help:"Web origins (scheme://host[:port], comma-separated; * for any) whose pages may open WebSocket connections besides the edge's own; clients that send no Origin (not browsers) are always let in; empty: same origin only; in development mode the upgrade's Host must be loopback or localhost too (no DNS rebinding)."`
	PingInterval       time.Duration `config:"Edge.PingInterval" name:"ping-interval" default:"${PingInterval}" help:"Ping a client not heard from for this long."`
	IdleTimeout        time.Duration `config:"Edge.IdleTimeout" name:"idle-timeout" default:"${IdleTimeout}" help:"Close a client not heard from for this long."`
	MaxFrameSize       int           `config:"Edge.MaxFrameSize" name:"max-frame-size" default:"${MaxFrameSize}" help:"Largest frame either way, bytes."`
	MaxRequests        int           `config:"Edge.MaxRequests" name:"max-requests" default:"${MaxRequests}" help:"Concurrent requests per connection (over: error too_many_requests)."`
	StreamBuffer       int           `config:"Edge.StreamBuffer" name:"stream-buffer" default:"${StreamBuffer}" help:"Response frames of one request queued for the client's socket."`
	ReceiptWindow      int           `config:"Edge.ReceiptWindow" name:"receipt-window" default:"${ReceiptWindow}" help:"Push-Ack: received pushes a connection holds written and unconfirmed; while full, the next waits in its queue (and what is queued behind it)."`
	ReceiptTimeout     time.Duration `config:"Edge.ReceiptTimeout" name:"receipt-timeout" default:"${ReceiptTimeout}" help:"A Push-Ack: received push the client has not confirmed for this long is dead-lettered unconfirmed; 0: never."`
	RequestTimeout     time.Duration `config:"Bus.RequestTimeout" name:"request-timeout" default:"${RequestTimeout}" help:"A request forwarded to req.<prefix>.<method> ends with timeout after this long without a reply."`
	RequestBuffer      int           `config:"Bus.RequestBuffer" name:"request-buffer" default:"${RequestBuffer}" help:"Replies held per request beyond --stream-buffer while the client is behind; over: too_slow."`
	RequestBufferBytes int           `config:"Bus.RequestBufferBytes" name:"request-buffer-bytes" default:"${RequestBufferBytes}" help:"Reply bytes held per request while the client is behind; over: too_slow."`
}

// limitFlags are the node's and each client's limits (docs/operations.md,
// "Limits"); 0 turns one off.
type limitFlags struct {
	MaxSessions          int     `config:"Edge.MaxSessions" name:"max-sessions" default:"${MaxSessions}" help:"Sessions this node holds at most; one more is refused once authenticated, WebSocket with HTTP 503 before the upgrade, TCP with close overloaded (a takeover of a session held here is not), and the node is not ready (/readyz 503) from then until it holds 90 % of this; 0: no limit."`
	ConnectRate          float64 `config:"Edge.ConnectRate" name:"connect-rate" default:"${ConnectRate}" help:"Client sockets accepted per second on all listeners (bursts of one second's worth); over: closed before the handshake (WebSocket: HTTP 429 first); 0: no limit."`
	ConnectRatePerIP     float64 `config:"Edge.ConnectRatePerIP" name:"connect-rate-per-ip" default:"${ConnectRatePerIP}" help:"Client sockets accepted per second from one address (an IPv6 /64; behind --proxy-protocol, the PROXY header's client), bursts of one second's worth; over: closed before the handshake (WebSocket: HTTP 429 first); 0: no limit."`
	MaxHandshakes        int     `config:"Edge.MaxHandshakes" name:"max-handshakes" default:"${MaxHandshakes}" help:"Sockets accepted and not yet through TLS, upgrade or hello and authentication, at most; over: a new one is closed at once (WebSocket: HTTP 503 first); 0: no limit."`
	ClientFrameRate      float64 `config:"Edge.ClientFrameRate" name:"client-frame-rate" default:"${ClientFrameRate}" help:"Frames a client sends per second (WebSocket pings included); over: closed overloaded; 0: no limit."`
	ClientFrameBurst     int     `config:"Edge.ClientFrameBurst" name:"client-frame-burst" default:"${ClientFrameBurst}" help:"Burst of --client-frame-rate; 0: one second's worth."`
	ClientByteRate       float64 `config:"Edge.ClientByteRate" name:"client-byte-rate" default:"${ClientByteRate}" help:"Bytes a client sends per second; over: closed overloaded; 0: no limit."`
	ClientByteBurst      int     `config:"Edge.ClientByteBurst" name:"client-byte-burst" default:"${ClientByteBurst}" help:"Burst of --client-byte-rate (a larger frame passes on a full bucket); 0: one second's worth."`
	RequestRate          float64 `config:"Edge.RequestRate" name:"request-rate" default:"${RequestRate}" help:"Requests a connection starts per second; over: the request gets error rate_limited, the connection stays; 0: no limit."`
	RequestBurst         int     `config:"Edge.RequestBurst" name:"request-burst" default:"${RequestBurst}" help:"Burst of --request-rate; 0: one second's worth."`
	MaxPendingFrameBytes int     `config:"Edge.MaxPendingFrameBytes" name:"max-pending-frame-bytes" default:"${MaxPendingFrameBytes}" help:"Memory for client frames partly received, on all connections together (twice what has arrived of each, past its first 4 KiB); a connection whose frame finds it taken is closed overloaded; 0 or at least --max-frame-size; 0: no limit."`
	MaxGroups            int     `config:"Edge.MaxGroups" name:"max-groups" default:"${MaxGroups}" help:"Groups a token may name (and a connection be a member of), at most 32; more: refused auth; 0: 32."`
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

// Each flag names, in its config tag, the app.Config field it sets (a
// dotted path; ",ifset": only when the flag is not empty). That one tag
// gives the flag its default (the field's in app.DefaultConfig), sets the
// field (apply), and names the flag in an error about the field
// (flagErrors).

// configFlag is one flag with a config tag: its Go name, its value in a
// flag set, and the field it sets.
type configFlag struct {
	name, flag, path string
	ifSet            bool
	value            reflect.Value
}

// configFlags lists f's flags with a config tag.
func (f *edgeFlags) configFlags() []configFlag {
	var out []configFlag
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if sf.Anonymous {
				walk(v.Field(i))
				continue
			}
			if tag, ok := sf.Tag.Lookup("config"); ok {
				path, opt, _ := strings.Cut(tag, ",")
				out = append(out, configFlag{name: sf.Name, flag: "--" + sf.Tag.Get("name"), path: path, ifSet: opt == "ifset", value: v.Field(i)})
			}
		}
	}
	walk(reflect.ValueOf(f).Elem())
	return out
}

// field is the field of c at path.
func field(c *app.Config, path string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for name := range strings.SplitSeq(path, ".") {
		v = v.FieldByName(name)
		if !v.IsValid() {
			panic("edge flags: app.Config has no field " + path) // TestEveryFlagSetsItsField
		}
	}
	return v
}

// defaults are the kong variables the flags' default tags name: each
// flag's field in c, by the flag's Go name.
func defaults(c app.Config) kong.Vars {
	var f edgeFlags
	vars := kong.Vars{}
	for _, cf := range f.configFlags() {
		vars[cf.name] = fmt.Sprint(field(&c, cf.path).Interface())
	}
	return vars
}

// apply sets the flags into c: a comma-separated string flag into a list
// field, a number into a field of its own type (a rate.Limit).
func (f *edgeFlags) apply(c *app.Config) {
	for _, cf := range f.configFlags() {
		v, dst := cf.value, field(c, cf.path)
		switch {
		case cf.ifSet && v.IsZero():
		case v.Kind() == reflect.String && dst.Kind() == reflect.Slice:
			var list []string
			if s := v.String(); s != "" {
				list = strings.Split(s, ",")
			}
			dst.Set(reflect.ValueOf(list))
		default:
			dst.Set(v.Convert(dst.Type()))
		}
	}
}

// flagErrors is err with each configuration field a flag sets named by
// the flag: --queue-len must be positive, where app.Config.Validate says
// Edge.QueueLen.
func (f *edgeFlags) flagErrors(err error) error {
	flags := map[string]string{}
	for _, cf := range f.configFlags() {
		flags[cf.path] = cf.flag
	}
	return check.Rename(err, func(path string) string { return cmp.Or(flags[path], path) })
}

// secretFlag says which of the edge's flags hold a secret, for the
// command line /debug/pprof/cmdline shows.
func secretFlag(name string) bool { return name == "nats-token" }
