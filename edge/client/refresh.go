package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// Refresh sends the server a new token for the connection's session (a
// refresh frame): the edge checks it as it checks a connect token and, if
// it is valid and names the same session, keeps the connection open until
// the new token expires; otherwise it closes the connection with reason
// auth. A connection without an expiry (development mode) ignores it.
func (c *Conn) Refresh(token string) error {
	return c.send(&Frame{Type: wire.TypeRefresh, Payload: []byte(token)})
}

// TokenExpiry reads a JWT's exp claim without checking the token (the
// client holds no key): false if tok is not a JWT with an exp.
func TokenExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	sec := *claims.Exp
	return time.Unix(int64(sec), int64((sec-float64(int64(sec)))*1e9)), true
}

// RefreshLead is how long before a token's exp a Session refreshes it at
// the latest.
const RefreshLead = 30 * time.Second

// RefreshTime is when a Session refreshes a token it got at got and that
// expires at exp: at 80% of its lifetime or RefreshLead before exp,
// whichever is sooner, but not before half its lifetime (a token shorter
// than a minute is refreshed at half its life, not at once, again and
// again).
func RefreshTime(got, exp time.Time) time.Time {
	life := exp.Sub(got)
	return got.Add(max(min(life*8/10, life-RefreshLead), life/2))
}

// refreshRetry is the wait after a token callback failed before a refresh
// is tried again.
const refreshRetry = 2 * time.Second

// refresh keeps c's token fresh, with tok the token c connected with: ahead
// of each token's exp (RefreshTime) it asks the token callback for a new one
// and sends it in a refresh frame. A failed callback is tried again until
// the token expires; the edge then closes the connection token_expired and
// the session reconnects with a token from the callback. A token without a
// readable exp is not refreshed. It returns when c ends.
func (s *Session) refresh(c *Conn, tok string) {
	got := time.Now()
	exp, ok := TokenExpiry(tok)
	for ok {
		if !s.waitUntil(c, RefreshTime(got, exp)) {
			return
		}
		next, err := s.freshToken()
		if err != nil {
			if time.Now().After(exp) || !s.waitUntil(c, time.Now().Add(refreshRetry)) {
				return
			}
			continue
		}
		if c.Refresh(next) != nil {
			return
		}
		got = time.Now()
		exp, ok = TokenExpiry(next)
	}
}

// waitUntil waits until t; false if c or the session ended first.
func (s *Session) waitUntil(c *Conn, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.Done():
	case <-s.ctx.Done():
	}
	return false
}

// freshToken asks the token callback for a token, bounded by the dial
// timeout.
func (s *Session) freshToken() (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.r.DialTimeout)
	defer cancel()
	return s.r.Token(ctx)
}
