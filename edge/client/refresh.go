package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// errStaleToken: the token callback, asked for a refresh, returned a token
// that expires no later than the one it would replace (a stale cache, or
// an expired token): sending it would gain nothing, and refreshing again
// at once would spin.
var errStaleToken = errors.New("client: the token callback returned a token that expires no later than the connection's")

// KeepTokenFresh keeps the connection from outliving its token, tok
// being the one it connected with: ahead of each token's exp
// (RefreshTime) it asks token for a new one and sends it in a refresh
// frame. Each call of token is given up after callTimeout, whether or not
// it heeds its context. A failed call, or one that returns a token
// expiring no later than the current one (not sent), is tried again every
// 2 s until the token expires; the edge then closes the connection
// token_expired. A token without a readable exp is not refreshed. It
// returns when the connection or ctx ends, with the last failure since
// the last refresh sent. Session does this by itself.
func (c *Conn) KeepTokenFresh(ctx context.Context, tok string, token func(context.Context) (string, error), callTimeout time.Duration) error {
	got := time.Now()
	exp, ok := TokenExpiry(tok)
	var failed error
	for ok {
		if !c.waitUntil(ctx, RefreshTime(got, exp)) {
			return failed
		}
		next, nextExp, err := freshToken(ctx, token, callTimeout, exp)
		if err != nil {
			failed = fmt.Errorf("refresh: %w", err)
			if time.Now().After(exp) || !c.waitUntil(ctx, time.Now().Add(refreshRetry)) {
				return failed
			}
			continue
		}
		if c.Refresh(next) != nil {
			return failed
		}
		got, exp, ok, failed = time.Now(), nextExp, !nextExp.IsZero(), nil
	}
	return failed
}

// waitUntil waits until t; false if c or ctx ended first.
func (c *Conn) waitUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.Done():
	case <-ctx.Done():
	}
	return false
}

// freshToken asks token for a token to replace one that expires at exp,
// bounded by timeout, and returns it with its own exp (zero if it has none
// readable). One that expires no later than exp is errStaleToken.
func freshToken(ctx context.Context, token func(context.Context) (string, error), timeout time.Duration, exp time.Time) (string, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tok, err := callToken(ctx, token)
	if err != nil {
		return "", time.Time{}, err
	}
	next, ok := TokenExpiry(tok)
	if ok && !next.After(exp) {
		return "", time.Time{}, errStaleToken
	}
	return tok, next, nil
}

// callToken calls token and returns its answer, or ctx's error once ctx
// ends first: a callback deaf to its context holds up
// neither a connection's end nor a reconnect (its goroutine ends when it
// returns; its answer is dropped).
func callToken(ctx context.Context, token func(context.Context) (string, error)) (string, error) {
	type answer struct {
		tok string
		err error
	}
	got := make(chan answer, 1)
	go func() {
		tok, err := token(ctx)
		got <- answer{tok, err}
	}()
	select {
	case a := <-got:
		return a.tok, a.err
	case <-ctx.Done():
		return "", fmt.Errorf("token callback: %w", ctx.Err())
	}
}
