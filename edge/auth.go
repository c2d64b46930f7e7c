package edge

import (
	"context"
	"errors"
	"net"

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

// BearerAuth authenticates clients by their bearer token alone: the
// WebSocket ?token= or Authorization: Bearer, or the TCP hello's payload.
func BearerAuth(v TokenVerifier) Authenticator {
	return AuthFunc(func(_ context.Context, cr Credentials) (string, error) { return v.Verify(cr.Token) })
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
	if err := push.CheckName("session", cr.Session); err != nil {
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
