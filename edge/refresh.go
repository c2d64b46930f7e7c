package edge

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Outcomes of a refresh frame.
const (
	RefreshOK      = "ok"      // a valid token for the connection's session: its expiry moved
	RefreshRefused = "refused" // invalid, or for another session: the connection was closed auth
	RefreshIgnored = "ignored" // the connection has no expiry (development mode, an authenticator that gives none)
)

// onRefresh checks the token a refresh frame carries as the handshake
// checks a connect token. One for the connection's session moves the
// connection's expiry to the new token's (or removes it, if the
// authenticator gives none); the new token's groups are not used: the
// connection keeps the groups it has. One that is not valid, or names
// another session, closes the connection with reason auth and the
// refusal as its message. On a connection without an expiry the frame is
// ignored. Runs on the reader goroutine.
func (c *Conn) onRefresh(tok []byte) {
	m := c.srv.metrics
	if c.expires.IsZero() {
		m.refreshes[RefreshIgnored].Inc()
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
