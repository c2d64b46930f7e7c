package client

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// Defaults of ReconnectOptions.
const (
	// DefaultBaseDelay is the ceiling of the first wait: a node's shutdown
	// sends all its clients back at once, and spreading them over half a
	// second keeps them off the other nodes' accept queues while every one
	// of them is back well within a second.
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps the wait: after an outage a client comes back
	// within 30 s of the edges' return, and the full jitter spreads a
	// whole fleet's attempts evenly over those 30 s.
	DefaultMaxDelay = 30 * time.Second
	// DefaultDialTimeout bounds each connect, handshake included.
	DefaultDialTimeout = 10 * time.Second
	// DefaultDedupe is how many push ids a Session remembers: far more
	// than a node holds for one connection in the pushes queued and
	// unconfirmed that a hand-over or a replay can repeat, at a few
	// hundred KiB at most.
	DefaultDedupe = 4096
)

// ErrDisconnected is the error of a request a Session could not complete
// because its connection was gone: sent between connections, or in flight
// when the connection ended. Such requests are not retried.
var ErrDisconnected = errors.New("client: disconnected")

// ErrGaveUp ends a Session that made ReconnectOptions.MaxAttempts failed
// connects in a row; [Session.Err] wraps it with the last attempt's error.
var ErrGaveUp = errors.New("client: gave up reconnecting")

// ReconnectOptions configure how a [Session] comes back. The zero value
// reconnects for ever with the defaults above and a static Options.Token.
type ReconnectOptions struct {
	// Token, when set, is called before each connect, the first and every
	// reconnect, for the token to present; it replaces Options.Token. An
	// error counts as a failed attempt. It is also called ahead of the exp
	// of the connection's token (RefreshTime), whose successor goes to the
	// edge in a refresh frame (Conn.Refresh); a failed call, or one that
	// returns a token expiring no later than the connection's (it is not
	// sent), is tried again every 2 s until the token expires, and the
	// token_expired disconnect's error names it. Each call is given up at
	// DialTimeout, whether or not the callback heeds its context; its
	// context ends with the Session, but a call that is under way may
	// still be running when Close has returned, so what it reads must be
	// safe to read from another goroutine.
	Token func(ctx context.Context) (string, error)
	// Addr, when set, picks the address of connect attempt n (from 0, over
	// the session's life), for a client given several edges instead of
	// one load balancer; nil: always Connect's address.
	Addr func(n int) string
	// BaseDelay and MaxDelay shape the backoff ([Backoff]); 0: the
	// defaults above. The backoff starts again from BaseDelay once a
	// connection has stayed up for MaxDelay, so a node that accepts
	// clients and at once closes them is not hammered.
	BaseDelay, MaxDelay time.Duration
	// MaxAttempts is how many connects in a row may fail before the
	// session gives up with ErrGaveUp; 0: no limit.
	MaxAttempts int
	// DialTimeout bounds each connect attempt; 0: DefaultDialTimeout.
	DialTimeout time.Duration
	// Dedupe is how many push ids the session remembers to drop repeats
	// by, across reconnects: the most recent ones, the oldest forgotten
	// first. 0: DefaultDedupe; negative: pushes are not deduplicated.
	Dedupe int
	// OnState, when set, is told of every change of the session's state,
	// in order, on the session's goroutine: it must return quickly, since
	// pushes wait for it.
	OnState func(State)
	// Rand returns numbers uniform in [0, 1) for the jitter; nil:
	// math/rand/v2.
	Rand func() float64
}

func (r ReconnectOptions) withDefaults() ReconnectOptions {
	if r.BaseDelay <= 0 {
		r.BaseDelay = DefaultBaseDelay
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = DefaultMaxDelay
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = DefaultDialTimeout
	}
	if r.Dedupe == 0 {
		r.Dedupe = DefaultDedupe
	}
	if r.Rand == nil {
		r.Rand = rand.Float64
	}
	return r
}

// StateKind is what happened to a Session.
type StateKind int

// The states a Session reports.
const (
	// StateConnected: a connection was made; State.Node holds it and
	// State.Err is what ended the previous one (nil the first time).
	StateConnected StateKind = iota + 1
	// StateDisconnected: the connection ended (State.Err says why); the
	// session connects again after State.Delay.
	StateDisconnected
	// StateRetrying: attempt State.Attempt failed (State.Err); the next
	// is made after State.Delay.
	StateRetrying
	// StateStopped: the session ended for good; State.Err is
	// [Session.Err]. It is the last state reported.
	StateStopped
)

func (k StateKind) String() string {
	switch k {
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateRetrying:
		return "retrying"
	case StateStopped:
		return "stopped"
	}
	return "unknown"
}

// State is a change of a Session's state.
type State struct {
	Kind    StateKind
	Node    string        // StateConnected: the node that holds the session
	Err     error         // see the kinds
	Attempt int           // StateRetrying: failed attempts in a row so far
	Delay   time.Duration // StateDisconnected, StateRetrying: the wait before the next attempt
}

// Backoff is exponential backoff with full jitter: the wait before retry
// n (from 0) is uniform in [0, min(Max, Base·2ⁿ)).
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait before retry n, given r uniform in [0, 1).
func (b Backoff) Delay(n int, r float64) time.Duration {
	return time.Duration(r * float64(b.Ceiling(n)))
}

// Ceiling is the longest wait before retry n: min(Max, Base·2ⁿ).
func (b Backoff) Ceiling(n int) time.Duration {
	c := b.Base
	for i := 0; i < n && c < b.Max; i++ {
		c *= 2
	}
	return min(c, b.Max)
}

// stops reports whether err, which ended a connection or a connect, ends
// the session (DESIGN §8), and with what error: replaced, auth, revoked and
// protocol do, and normal (the application's own close); token_expired
// does when there is no token callback to get a fresh one; so does a
// server whose certificate the client does not trust (trying again
// changes nothing). Everything else calls for a reconnect: shutdown, idle,
// too_slow, overloaded, reasons this version does not know, and network
// loss.
func stops(err error, refresh bool) (bool, error) {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return true, err
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		return false, nil
	}
	switch ce.Reason {
	case wire.CloseReplaced, wire.CloseAuth, wire.CloseRevoked, wire.CloseProtocol, wire.CloseNormal:
		return true, ce
	case wire.CloseTokenExpired:
		return !refresh, ce
	}
	return false, nil
}

// window is a bounded set of push ids: the last n added, forgotten oldest
// first, each with whether the application has confirmed it (taken it,
// with automatic receipts). Safe for concurrent use: the session's
// goroutine adds, the application's confirm.
type window struct {
	mu   sync.Mutex
	ids  map[string]bool // guarded by mu: confirmed
	ring []string        // guarded by mu
	next int             // guarded by mu
}

func newWindow(n int) *window {
	if n <= 0 {
		return nil
	}
	return &window{ids: make(map[string]bool, n), ring: make([]string, n)}
}

// add records id and reports whether it is new, and, for one that is
// not, whether the application has confirmed it. A nil window takes
// everything.
func (w *window) add(id string) (isNew, confirmed bool) {
	if w == nil {
		return true, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if confirmed, dup := w.ids[id]; dup {
		return false, confirmed
	}
	if old := w.ring[w.next]; old != "" {
		delete(w.ids, old)
	}
	w.ring[w.next], w.ids[id] = id, false
	w.next = (w.next + 1) % len(w.ring)
	return true, false
}

// confirm marks id confirmed, if it is in the window.
func (w *window) confirm(id string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if _, ok := w.ids[id]; ok {
		w.ids[id] = true
	}
	w.mu.Unlock()
}
