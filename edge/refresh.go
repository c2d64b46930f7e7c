package edge

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Outcomes of a refresh frame.
const (
	RefreshOK      = "ok"      // a valid token for the connection's session: its expiry moved
	RefreshRefused = "refused" // invalid, or for another session: the connection was closed auth
	RefreshIgnored = "ignored" // the connection has no expiry (development mode, an authenticator that gives none)
	RefreshLimited = "limited" // past the refresh rate (refreshInterval, refreshBurst): dropped unchecked
)

// A connection's refresh frames are checked at most one per
// refreshInterval, after a burst of refreshBurst: each check is a
// signature verification (some 15 µs for HS256, 90 µs for EdDSA, 120 µs
// for RS256), and a client resending one valid token would otherwise
// keep a core busy. A legitimate client refreshes once per token
// lifetime; one past the rate loses the refreshes dropped, and its
// connection ends token_expired at the expiry it has (it reconnects).
const (
	refreshInterval = time.Second
	refreshBurst    = 3
)

// onRefresh checks the token a refresh frame carries as the handshake
// checks a connect token. One for the connection's session moves the
// connection's expiry to the new token's (or removes it, if the
// authenticator gives none); the new token's groups are not used: the
// connection keeps the groups it has. One that is not valid, or names
// another session, closes the connection with reason auth and the
// refusal as its message. On a connection without an expiry the frame is
// ignored; one past the refresh rate is dropped unchecked. Runs on the
// reader goroutine.
func (c *Conn) onRefresh(tok []byte) {
	m := c.srv.metrics
	if c.expires.IsZero() {
		m.refreshes[RefreshIgnored].Inc()
		return
	}
	if !c.refreshAllowed(time.Now()) {
		m.refreshes[RefreshLimited].Inc()
		return
	}
	id, err := c.reauthenticate(string(tok))
	if err == nil && id.Session != c.session {
		err = errors.New("refresh token is for another session")
	}
	if err != nil {
		m.refreshes[RefreshRefused].Inc()
		c.srv.log.Debug("token refresh refused", zap.String("session", c.session), zap.Error(err))
		c.abortWith(wire.CloseAuth, err)
		return
	}
	m.refreshes[RefreshOK].Inc()
	c.expires = id.Expires
}

// refreshAllowed reports whether a refresh frame arriving at now is
// within the connection's refresh rate, and if so counts it (a GCRA:
// refreshAt is when the rate has room for the next one without the
// burst).
func (c *Conn) refreshAllowed(now time.Time) bool {
	at := c.refreshAt
	if at.Before(now) {
		at = now
	}
	if at.Sub(now) > (refreshBurst-1)*refreshInterval {
		return false
	}
	c.refreshAt = at.Add(refreshInterval)
	return true
}

// reauthenticate runs the server's authenticator on a refresh frame's
// token, bounded by the handshake timeout.
func (c *Conn) reauthenticate(tok string) (Identity, error) {
	ctx, cancel := c.srv.baseCtx, context.CancelFunc(func() {})
	if t := c.srv.cfg.HandshakeTimeout; t > 0 {
		ctx, cancel = context.WithTimeout(ctx, t)
	}
	defer cancel()
	cr := Credentials{Transport: c.fr.name(), Token: tok, Local: c.nc.LocalAddr(), Remote: c.remote}
	return authenticate(ctx, c.srv.auth, cr)
}

// expire closes the connection because its token expired: nothing more is
// written, and what was queued is accounted for as for any closed
// connection (dead-lettered closed, receipt-pushes handed over).
func (c *Conn) expire() {
	c.abort(wire.CloseTokenExpired, push.ReasonClosed)
}

// expiryGrace is how long past its token's expiry a connection is still
// read, when bytes were waiting at the expiry (they may be a refresh the
// client sent in time). A client that keeps sending is closed
// token_expired at its end all the same: without it, a read deadline
// left at the expiry fired at once while bytes were waiting, and the
// reader spun on it without reading (TestTokenExpiryUnderFlood).
const expiryGrace = time.Second

// tokenEnded reports whether the connection's token has expired at now.
func (c *Conn) tokenEnded(now time.Time) bool {
	return !c.expires.IsZero() && !now.Before(c.expires)
}

// graceOver reports whether the token expired more than expiryGrace
// before now: the connection is closed whatever is waiting to be read.
func (c *Conn) graceOver(now time.Time) bool {
	return !c.expires.IsZero() && !now.Before(c.expires.Add(expiryGrace))
}

// expiryDeadline is the reader's next deadline for the token: its expiry,
// or once that has passed, the end of the grace; zero without an expiry.
func (c *Conn) expiryDeadline(now time.Time) time.Time {
	if !c.tokenEnded(now) {
		return c.expires
	}
	return c.expires.Add(expiryGrace)
}
