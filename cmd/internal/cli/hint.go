package cli

import (
	"errors"

	"github.com/nats-io/nats.go"
)

// The hints Explain adds: what to do next, for the errors a new user of
// the client tools meets first.
const (
	noServersHint = "(is the edge (make run) or NATS running? --nats or NATS_URL says where)"
	natsAuthHint  = "(this NATS wants credentials: --nats-user with --nats-password-file, --nats-creds, --nats-nkey, --nats-token or --context)"
	noTokenHint   = "(give --secret-file data/jwt-secret as make run made it, --key-file or --token)"
)

// Explain is err's text followed, on the same line, by what to do about
// it when err is one a new user meets first: NATS not reachable
// (nats.ErrNoServers), NATS wanting credentials (nats.ErrAuthorization),
// or an edge refusing a client that gave no token (see NoToken).
func Explain(err error) string {
	var nt *noTokenError
	switch {
	case errors.Is(err, nats.ErrNoServers):
		return err.Error() + " " + noServersHint
	case errors.Is(err, nats.ErrAuthorization):
		return err.Error() + " " + natsAuthHint
	case errors.As(err, &nt):
		return err.Error() + " " + noTokenHint
	}
	return err.Error()
}

// NoToken marks err, an edge's refusal to authenticate a client that was
// given no token, so that Explain says how to give one. Its text is err's.
func NoToken(err error) error { return &noTokenError{err} }

type noTokenError struct{ err error }

func (e *noTokenError) Error() string { return e.err.Error() }
func (e *noTokenError) Unwrap() error { return e.err }
