package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pushfabric/pushfabric/push"
)

// Credentials are what a client presented when it connected.
type Credentials struct {
	Transport string // "websocket" or "tcp"
	// Token is the bearer token: the WebSocket ?token= query parameter or
	// Authorization: Bearer header, or the payload of the TCP hello frame.
	Token string
	// Session is the session the client asked for by name (?session= or
	// the hello frame's ID). Only development authentication honours it.
	Session string
	Local   net.Addr // the listener's side
	Remote  net.Addr // the client's side
}

// Authenticator decides which session a client holds. It runs during the
// handshake, bounded by Config.HandshakeTimeout through ctx. An error
// rejects the client with close reason auth; its text is sent to the
// client, so it must not reveal secrets.
type Authenticator interface {
	Authenticate(ctx context.Context, cr Credentials) (session string, err error)
}

// AuthFunc adapts a function to an Authenticator.
type AuthFunc func(ctx context.Context, cr Credentials) (string, error)

// Authenticate calls f.
func (f AuthFunc) Authenticate(ctx context.Context, cr Credentials) (string, error) {
	return f(ctx, cr)
}

// TokenVerifier checks a bearer token and returns the session it names
// (a *token.Verifier is one).
type TokenVerifier interface {
	Verify(token string) (session string, err error)
}

// GroupAuthenticator is an Authenticator that also names the groups the
// client's connection is a member of from the start (a token's groups
// claim). The server calls AuthenticateGroups in the place of
// Authenticate when its authenticator has it; groups that break
// push.CheckGroups reject the client with close reason auth.
type GroupAuthenticator interface {
	Authenticator
	AuthenticateGroups(ctx context.Context, cr Credentials) (session string, groups []string, err error)
}

// GroupVerifier is a TokenVerifier that also returns the token's groups
// claim (a *token.Verifier is one).
type GroupVerifier interface {
	TokenVerifier
	VerifyGroups(token string) (session string, groups []string, err error)
}

// ExpiryVerifier is a GroupVerifier that also says until when a token is
// accepted (a *token.Verifier is one: its exp plus token.Leeway).
type ExpiryVerifier interface {
	GroupVerifier
	VerifyClaims(token string) (session string, groups []string, until time.Time, err error)
}

// Identity is what an IdentityAuthenticator knows of a client.
type Identity struct {
	Session string
	Groups  []string // as GroupAuthenticator's
	// Expires, if not zero, is when the client's credentials end: the
	// edge closes the connection with reason token_expired then, unless a
	// refresh frame moved it first.
	Expires time.Time
}

// IdentityAuthenticator is an Authenticator that also says when the
// client's credentials expire. The server calls AuthenticateIdentity in
// the place of AuthenticateGroups and Authenticate when its authenticator
// has it, at the handshake and for each refresh frame (whose Credentials
// carry the new token and no Session).
type IdentityAuthenticator interface {
	Authenticator
	AuthenticateIdentity(ctx context.Context, cr Credentials) (Identity, error)
}

// BearerAuth authenticates clients by their bearer token alone: the
// WebSocket ?token= or Authorization: Bearer, or the TCP hello's payload.
// When v is a GroupVerifier, the token's groups claim makes the
// connection a member of those groups; when it is an ExpiryVerifier, the
// connection is closed token_expired when its token stops being accepted,
// unless a refresh frame brought a newer one.
func BearerAuth(v TokenVerifier) Authenticator { return bearerAuth{v} }

type bearerAuth struct{ v TokenVerifier }

func (b bearerAuth) Authenticate(_ context.Context, cr Credentials) (string, error) {
	return b.v.Verify(cr.Token)
}

func (b bearerAuth) AuthenticateGroups(_ context.Context, cr Credentials) (string, []string, error) {
	if gv, ok := b.v.(GroupVerifier); ok {
		return gv.VerifyGroups(cr.Token)
	}
	session, err := b.v.Verify(cr.Token)
	return session, nil, err
}

func (b bearerAuth) AuthenticateIdentity(ctx context.Context, cr Credentials) (Identity, error) {
	var id Identity
	var err error
	if ev, ok := b.v.(ExpiryVerifier); ok {
		id.Session, id.Groups, id.Expires, err = ev.VerifyClaims(cr.Token)
	} else {
		id.Session, id.Groups, err = b.AuthenticateGroups(ctx, cr)
	}
	return id, err
}

// authenticate runs the server's authenticator: its AuthenticateIdentity
// or AuthenticateGroups if it has one. The session and groups it returns
// must follow the naming rules.
func authenticate(ctx context.Context, a Authenticator, cr Credentials) (Identity, error) {
	id, err := identify(ctx, a, cr)
	switch {
	case err != nil:
		return Identity{}, err
	case push.CheckSession(id.Session) != nil:
		return Identity{}, fmt.Errorf("authenticator returned session id %q: %w", id.Session, push.CheckSession(id.Session))
	}
	if err := push.CheckGroups(id.Groups); err != nil {
		return Identity{}, fmt.Errorf("groups: %w", err)
	}
	id.Groups = slices.Compact(slices.Sorted(slices.Values(id.Groups)))
	return id, nil
}

func identify(ctx context.Context, a Authenticator, cr Credentials) (Identity, error) {
	var id Identity
	var err error
	switch a := a.(type) {
	case IdentityAuthenticator:
		id, err = a.AuthenticateIdentity(ctx, cr)
	case GroupAuthenticator:
		id.Session, id.Groups, err = a.AuthenticateGroups(ctx, cr)
	default:
		id.Session, err = a.Authenticate(ctx, cr)
	}
	return id, err
}

// DevAuth is development mode: a client gets the session it names, with no
// token. It serves only loopback listeners and loopback clients, WebSocket
// upgrades only if their Host names loopback (against DNS rebinding), and
// the server logs loudly when it is in use.
type DevAuth struct{}

// Authenticate accepts cr.Session if both ends are on loopback.
func (DevAuth) Authenticate(_ context.Context, cr Credentials) (string, error) {
	if !isLoopback(cr.Local) || !isLoopback(cr.Remote) {
		return "", errors.New("development authentication accepts loopback clients only")
	}
	if err := push.CheckSession(cr.Session); err != nil {
		return "", err
	}
	return cr.Session, nil
}

func (DevAuth) loopbackOnly() {}

// devMode reports whether a is development authentication.
func devMode(a Authenticator) bool {
	_, dev := a.(interface{ loopbackOnly() })
	return dev
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
