package bus

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/internal/check"
)

// Config says how an edge node reaches NATS. The node's subject prefix
// and name are its push.Identity, which [New] takes beside it.
type Config struct {
	// URLs of the NATS servers. Empty: start an embedded server.
	URLs []string

	// Credentials for URLs: a .creds file, an NKey seed file, or a token;
	// TLS: a CA bundle to trust and a client certificate and key.
	CredsFile    string
	NKeySeedFile string
	Token        string
	TLSCA        string
	TLSCert      string
	TLSKey       string
	// User and PasswordFile (a file holding the password, surrounding
	// white space ignored): the node connects as that user, to URLs or to
	// the embedded server, which then lets in that user only.
	User         string
	PasswordFile string

	// InboxPrefix replaces _INBOX as the prefix of the node's own reply
	// subjects (nats.CustomInboxPrefix): its JetStream calls and their
	// acknowledgements, the questions it asks the server. A NATS account
	// that gives each role its own prefix (deployments/nats: _INBOX_edge)
	// lets no other role read them. Empty: _INBOX. (Hand-overs and
	// requests have inboxes of their own: protocol.EdgeInboxPrefix and
	// protocol.RequestInboxPrefix.)
	InboxPrefix string

	// ConnectRetry: when no server of URLs can be reached at Start, Start
	// does not fail but leaves the connection retrying, without end, as
	// after a disconnection; the node is not ready and takes no clients
	// until it is connected (see [Conn.Connected]). Off: Start fails, so
	// a wrong URL or credentials are said at once. (An embedded server is
	// always reached.)
	ConnectRetry bool

	// PingInterval is how often the connection checks the server is there.
	PingInterval time.Duration

	// Embedded is used when URLs is empty.
	Embedded EmbeddedConfig

	// DispatchBuffer bounds pushes received from NATS and not yet handed to
	// their connection, per dispatch lane. NATS drops what does not fit (a
	// slow consumer: counted, but no dead letter can record it), so it is
	// large enough to ride out the bursts a loaded node meets — a GC cycle
	// taking a core, the NATS reader draining a socket backlog — and
	// overload shows up as queue_full dead letters instead. Its slots cost
	// memory only once used; at most DispatchBuffer × lanes messages are
	// held (pushbench load: 1,000 sessions unpaced on 2 cores, 65,536 slots
	// dropped in every run, 1,048,576 in none).
	DispatchBuffer int

	// FanoutBacklog bounds the member copies of group pushes taken from
	// NATS and not yet queued to their members, per dispatch lane. Each
	// lane queues a group push to its members on a goroutine of its own, so
	// that a large group does not hold up the lane (and NATS, behind it);
	// a group push that would take the backlog past this is dead-lettered
	// queue_full for the group (dlq.<prefix>.queue_full.group.<group>.<prio>)
	// instead, and none of the node's members get it. A lane with nothing
	// waiting takes any group push, however many members it has. The
	// default is about 0.2 s of copying on a core.
	FanoutBacklog int

	// DispatchLanes is how many goroutines hand pushes from NATS to the
	// sessions' queues (a session always uses the same one).
	DispatchLanes int

	// RedeliverOffline: when a session connects, its offline dead letters
	// (pushes published while no node held it) are delivered first, oldest
	// first, and each is deleted from the stream once written.
	RedeliverOffline bool

	// HandoverTimeout is how long a node that handed a push to the
	// session's new node waits for that node's answer before it
	// dead-letters the push as replaced. The taking node answers as it
	// dispatches the push, so a round trip and its dispatch backlog are
	// what it must cover; a push it took after all may then be both
	// delivered and dead-lettered.
	HandoverTimeout time.Duration

	// RequestTimeout ends a client request forwarded over NATS with
	// timeout when no reply came for this long. RequestBuffer and
	// RequestBufferBytes bound the replies a request holds that its client
	// has not taken yet; past either, its stream ends with too_slow.
	RequestTimeout     time.Duration
	RequestBuffer      int
	RequestBufferBytes int

	// TracerProvider, when set, traces each push that carries a producer's
	// trace context from dispatch to its write or dead letter. Nil: no
	// tracing and no cost.
	TracerProvider trace.TracerProvider
}

// EmbeddedConfig is the embedded NATS server: JetStream on, listening on
// loopback so the nats CLI and producers on this machine can reach it.
type EmbeddedConfig struct {
	Listen  string // host:port; default 127.0.0.1:4222
	DataDir string // JetStream storage; default ./data/nats
}

// DefaultConfig is an embedded server on 127.0.0.1:4222.
func DefaultConfig() Config {
	return Config{
		PingInterval:   10 * time.Second,
		Embedded:       EmbeddedConfig{Listen: "127.0.0.1:4222", DataDir: "data/nats"},
		DispatchBuffer: 1 << 20,
		FanoutBacklog:  1 << 20,
		DispatchLanes:  runtime.GOMAXPROCS(0),
		// A round trip on a LAN is well under a millisecond and a full
		// dispatch lane (DispatchBuffer pushes at a few µs each) a fraction
		// of a second: 2 s answers for a loaded node, while a push nobody
		// took waits no longer than that for its dead letter.
		HandoverTimeout: 2 * time.Second,

		RequestTimeout:     30 * time.Second,
		RequestBuffer:      4096,
		RequestBufferBytes: 4 << 20,
	}
}

// Validate reports every field out of range.
func (c Config) Validate() error {
	var errs []error
	errs = check.Positive(errs, "DispatchLanes", c.DispatchLanes)
	errs = check.Positive(errs, "DispatchBuffer", c.DispatchBuffer)
	errs = check.Positive(errs, "FanoutBacklog", c.FanoutBacklog)
	errs = check.Positive(errs, "HandoverTimeout", c.HandoverTimeout)
	errs = check.Positive(errs, "RequestTimeout", c.RequestTimeout)
	errs = check.Positive(errs, "RequestBuffer", c.RequestBuffer)
	errs = check.Positive(errs, "RequestBufferBytes", c.RequestBufferBytes)
	errs = check.Positive(errs, "PingInterval", c.PingInterval)
	errs = check.Together(errs, "User", c.User != "", "PasswordFile", c.PasswordFile != "")
	errs = check.Together(errs, "TLSCert", c.TLSCert != "", "TLSKey", c.TLSKey != "")
	if c.InboxPrefix != "" && !validInboxPrefix(c.InboxPrefix) {
		errs = check.Field(errs, "InboxPrefix", "%q is not a subject without wildcards or empty tokens", c.InboxPrefix)
	}
	if len(c.URLs) == 0 {
		if _, port, err := net.SplitHostPort(c.Embedded.Listen); err != nil {
			errs = check.Field(errs, "Embedded.Listen", "is not an address: %v", err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = check.Field(errs, "Embedded.Listen", "has a port that is not a number: %q", port)
		}
		if c.Embedded.DataDir == "" {
			errs = check.Field(errs, "Embedded.DataDir", "is empty")
		}
	}
	return errors.Join(errs...)
}

// validInboxPrefix reports whether p is a subject nats.CustomInboxPrefix
// takes: dot-separated tokens, none empty, no wildcards or white space.
func validInboxPrefix(p string) bool {
	for _, t := range strings.Split(p, ".") {
		if t == "" || t == "*" || t == ">" || strings.ContainsAny(t, " \t\r\n*>") {
			return false
		}
	}
	return true
}
