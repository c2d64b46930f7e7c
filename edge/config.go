package edge

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/push"
)

// TryPushPolicy says what TryPush does with a frame it cannot queue.
type TryPushPolicy int

const (
	// TryPushReturns: TryPush returns ErrQueueFull or ErrClosed and the
	// caller keeps the frame.
	TryPushReturns TryPushPolicy = iota
	// TryPushDeadLetters: TryPush hands the frame to the dead-letter sink
	// and returns a *DeadLetteredError saying with which reason.
	TryPushDeadLetters
)

// Config tunes connections. Start from [DefaultConfig]; [Config.Validate]
// says what is wrong with a Config.
type Config struct {
	// QueueLen and QueueBytes bound each priority's queue per connection. A
	// bound is not an allocation: an empty queue holds no buffer.
	QueueLen   int
	QueueBytes int
	// TryPush is the policy for frames TryPush cannot queue.
	TryPush TryPushPolicy

	// MaxHighBeforeLow: after this many high-priority frames in a row, one
	// waiting low-priority frame goes out. FairnessSlice does the same once
	// a run of high frames has lasted that long. Both zero: strict priority.
	MaxHighBeforeLow int
	FairnessSlice    time.Duration
	// Rate limits pushes written per second per connection, both priorities
	// together, with bursts of up to Burst. Zero: no limit. Pushes wait in
	// their queue for tokens; control and response frames are not limited.
	Rate  rate.Limit
	Burst int
	// BatchFrames and BatchBytes bound one coalesced write.
	BatchFrames int
	BatchBytes  int
	// Flushers is the number of shared goroutines that write for
	// connections with pending frames. Zero: each connection with pending
	// frames gets a goroutine of its own until its queues are empty. Either
	// way a socket that blocks gets its own goroutine for the rest of the
	// write, so a stalled client never holds up another.
	Flushers int
	// WriteTimeout ends a connection whose socket accepted nothing for this
	// long, with close reason too_slow.
	WriteTimeout time.Duration

	// MaxFrameSize bounds frames both ways. Larger client frames close the
	// connection with reason protocol; larger pushes are refused.
	MaxFrameSize int
	// HandshakeTimeout bounds the WebSocket upgrade or TCP hello plus
	// authentication.
	HandshakeTimeout time.Duration
	// MaxHandshakeSize bounds what a client sends before it has a session:
	// the WebSocket upgrade request (request line and headers together)
	// and the TCP hello frame. A larger one is refused (HTTP 431, or close
	// reason protocol) and the socket closed, before the rest is read.
	MaxHandshakeSize int
	// WSAllowedOrigins are the web origins (scheme://host[:port], as
	// browsers send them in the Origin header) whose pages may open
	// WebSocket connections besides the edge's own (the Origin's host:port
	// equals the request's Host); "*" allows every origin. A request with
	// no Origin header does not come from a browser page and is allowed.
	// Others get HTTP 403, as does a request with more than one Origin.
	// Empty: same origin only. With DevAuth the node also refuses (403)
	// every request whose Host does not name loopback (a loopback address,
	// localhost, *.localhost), since a DNS-rebinding page is its own origin.
	WSAllowedOrigins []string
	// ProxyProtocol are the sources (CIDRs, or single addresses) whose
	// connections start with a PROXY protocol version 2 header: a load
	// balancer that says whose connection it passes on. The header's
	// source address is then the client's (in logs, hooks and
	// Conn.RemoteAddr); a connection from a listed source without one is
	// refused. From any other source no header is read. Empty: none.
	ProxyProtocol []string
	// PingInterval: a ping goes to a client not heard from for this long.
	// IdleTimeout: a client not heard from for this long is closed (idle).
	PingInterval time.Duration
	IdleTimeout  time.Duration

	// MaxRequests bounds concurrent requests per connection; StreamBuffer
	// bounds the response frames one request may have queued.
	MaxRequests  int
	StreamBuffer int

	// DrainTimeout bounds how long a closing connection keeps writing what
	// is queued before dead-lettering the rest.
	DrainTimeout time.Duration

	// ReceiptWindow bounds the receipt-pushes (Frame.WantsReceipt) a
	// connection holds written and unconfirmed; while it is full, further
	// receipt-pushes wait in the queue. ReceiptTimeout dead-letters one
	// not confirmed for this long as unconfirmed; zero: never.
	ReceiptWindow  int
	ReceiptTimeout time.Duration

	// Limits: what one node and one client may take, each refused as
	// docs/operations.md ("Limits") says and counted by its Limit* label
	// in Stats.LimitRefusals. Zero turns a limit off.
	//
	// MaxSessions bounds the connections the node holds. A client that
	// would be one more is refused once authenticated: closed with reason
	// overloaded, or, a WebSocket client while the node is full, answered
	// 503 with Retry-After instead of upgraded (it is then authenticated
	// before the upgrade too). A takeover of a session the node holds adds
	// none and is never refused. [Server.Full] reports the node full from
	// the limit until it holds no more than nine tenths of MaxSessions.
	MaxSessions int
	// ConnectRate bounds the sockets accepted per second on all the
	// server's listeners, ConnectRatePerIP those from one client address
	// (an IPv6 address's /64; a PROXY header's source behind a trusted
	// load balancer); bursts of one second's worth. Past either the socket
	// is closed before its handshake (a WebSocket client is first answered
	// 429, best effort).
	ConnectRate      rate.Limit
	ConnectRatePerIP rate.Limit
	// MaxHandshakes bounds the sockets accepted and not yet through their
	// PROXY header, TLS, upgrade or hello and authentication; past it a new
	// socket is closed at once (a WebSocket client is first answered 503,
	// best effort).
	MaxHandshakes int
	// ClientFrameRate and ClientByteRate bound the frames (WebSocket
	// control frames included) and bytes a client sends per second, with
	// bursts of ClientFrameBurst and ClientByteBurst (zero: one second's
	// worth); a frame larger than the byte burst passes on a full bucket.
	// Past either the connection is closed with reason overloaded.
	ClientFrameRate  rate.Limit
	ClientFrameBurst int
	ClientByteRate   rate.Limit
	ClientByteBurst  int
	// RequestRate bounds the requests a connection starts per second, with
	// bursts of RequestBurst (zero: one second's worth); past it a request
	// is answered with an error frame, code rate_limited, and the
	// connection stays open.
	RequestRate  rate.Limit
	RequestBurst int
	// MaxPendingFrameBytes bounds the memory, on all connections together,
	// held by client frames partly received (past the first 4 KiB of each,
	// twice the bytes that have arrived, as the buffer grows); a reader
	// that cannot have more closes its connection with reason overloaded.
	// At least MaxFrameSize when set.
	MaxPendingFrameBytes int
	// MaxGroups bounds the groups a client's token may name, up to
	// push.MaxGroups (zero: push.MaxGroups); a token with more is refused
	// with reason auth. It bounds ChangeGroups too.
	MaxGroups int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		QueueLen:         512,
		QueueBytes:       1 << 20,
		MaxHighBeforeLow: 8,
		BatchFrames:      128,
		BatchBytes:       64 << 10,
		Flushers:         1,
		WriteTimeout:     10 * time.Second,
		MaxFrameSize:     wire.DefaultMaxFrameSize,
		HandshakeTimeout: 10 * time.Second,
		MaxHandshakeSize: 16 << 10,
		PingInterval:     25 * time.Second,
		IdleTimeout:      60 * time.Second,
		MaxRequests:      16,
		StreamBuffer:     32,
		DrainTimeout:     5 * time.Second,
		ReceiptWindow:    256,
		ReceiptTimeout:   30 * time.Second,

		MaxSessions:          100_000,
		ConnectRate:          2000,
		MaxHandshakes:        4096,
		ClientFrameRate:      500,
		ClientFrameBurst:     1000,
		ClientByteRate:       1 << 20,
		ClientByteBurst:      4 << 20,
		RequestRate:          100,
		RequestBurst:         200,
		MaxPendingFrameBytes: 256 << 20,
		MaxGroups:            push.MaxGroups,
	}
}

// Validate reports every field that is out of range.
func (c Config) Validate() error {
	var errs []error
	errs = check.Positive(errs, "QueueLen", c.QueueLen)
	errs = check.Positive(errs, "QueueBytes", c.QueueBytes)
	errs = check.Positive(errs, "BatchFrames", c.BatchFrames)
	errs = check.Positive(errs, "BatchBytes", c.BatchBytes)
	errs = check.Positive(errs, "MaxRequests", c.MaxRequests)
	errs = check.Positive(errs, "StreamBuffer", c.StreamBuffer)
	errs = check.Positive(errs, "ReceiptWindow", c.ReceiptWindow)
	errs = check.NotNegative(errs, "ReceiptTimeout", c.ReceiptTimeout)
	errs = check.NotNegative(errs, "MaxHighBeforeLow", c.MaxHighBeforeLow)
	errs = check.NotNegative(errs, "Flushers", c.Flushers)
	errs = check.NotNegative(errs, "Burst", c.Burst)
	errs = check.NotNegative(errs, "FairnessSlice", c.FairnessSlice)
	errs = check.NotNegative(errs, "WriteTimeout", c.WriteTimeout)
	errs = check.NotNegative(errs, "HandshakeTimeout", c.HandshakeTimeout)
	errs = check.NotNegative(errs, "PingInterval", c.PingInterval)
	errs = check.NotNegative(errs, "IdleTimeout", c.IdleTimeout)
	errs = check.NotNegative(errs, "DrainTimeout", c.DrainTimeout)
	errs = check.NotNegative(errs, "Rate", c.Rate)
	errs = c.validateLimits(errs)
	if c.TryPush != TryPushReturns && c.TryPush != TryPushDeadLetters {
		errs = check.Field(errs, "TryPush", "is an unknown policy: %d", c.TryPush)
	}
	if c.MaxHandshakeSize < minHandshakeSize {
		errs = check.Field(errs, "MaxHandshakeSize", "must be at least %d, got %d", minHandshakeSize, c.MaxHandshakeSize)
	}
	if _, err := newOriginPolicy(c.WSAllowedOrigins); err != nil {
		errs = check.Field(errs, "WSAllowedOrigins", "is not valid: %v", err)
	}
	if _, err := newProxySources(c.ProxyProtocol); err != nil {
		errs = check.Field(errs, "ProxyProtocol", "is not valid: %v", err)
	}
	if c.MaxFrameSize < minFrameSize {
		errs = check.Field(errs, "MaxFrameSize", "must be at least %d (1 KiB), got %d", minFrameSize, c.MaxFrameSize)
	}
	return errors.Join(errs...)
}

// validateLimits checks the node and client limits.
func (c Config) validateLimits(errs []error) []error {
	errs = check.NotNegative(errs, "MaxSessions", c.MaxSessions)
	errs = check.NotNegative(errs, "ConnectRate", c.ConnectRate)
	errs = check.NotNegative(errs, "ConnectRatePerIP", c.ConnectRatePerIP)
	errs = check.NotNegative(errs, "MaxHandshakes", c.MaxHandshakes)
	errs = check.NotNegative(errs, "ClientFrameRate", c.ClientFrameRate)
	errs = check.NotNegative(errs, "ClientFrameBurst", c.ClientFrameBurst)
	errs = check.NotNegative(errs, "ClientByteRate", c.ClientByteRate)
	errs = check.NotNegative(errs, "ClientByteBurst", c.ClientByteBurst)
	errs = check.NotNegative(errs, "RequestRate", c.RequestRate)
	errs = check.NotNegative(errs, "RequestBurst", c.RequestBurst)
	errs = check.NotNegative(errs, "MaxPendingFrameBytes", c.MaxPendingFrameBytes)
	errs = check.NotNegative(errs, "MaxGroups", c.MaxGroups)
	if c.MaxGroups > push.MaxGroups {
		errs = check.Field(errs, "MaxGroups", "must be at most %d, got %d", push.MaxGroups, c.MaxGroups)
	}
	if c.MaxPendingFrameBytes > 0 && c.MaxPendingFrameBytes < c.MaxFrameSize {
		errs = append(errs, &check.FieldError{Field: "MaxPendingFrameBytes", With: "MaxFrameSize",
			Problem: fmt.Sprintf("do not fit: the first must be 0 or at least the second, got %d and %d", c.MaxPendingFrameBytes, c.MaxFrameSize)})
	}
	return errs
}

// minFrameSize is the smallest MaxFrameSize: room for a hello with a
// token, a receipt of a few ids, a small request.
const minFrameSize = 1 << 10

// minHandshakeSize is the smallest MaxHandshakeSize: room for a plain
// WebSocket upgrade request.
const minHandshakeSize = 512

// burst is the token bucket size: Burst, or one second's worth of tokens.
func (c Config) burst() int { return int(burstOf(c.Rate, c.Burst)) }

// maxGroups is the most groups a connection may be a member of.
func (c Config) maxGroups() int {
	if c.MaxGroups > 0 {
		return c.MaxGroups
	}
	return push.MaxGroups
}
