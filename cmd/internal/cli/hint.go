package cli

import (
	"context"
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

// The hints ExplainStart adds, for an edge node that did not start.
const (
	edgeNoServersHint = "(is NATS running at --nats-url? --nats-connect-retry starts the node anyway, not ready until NATS is there)"
	edgeAuthHint      = "(this NATS wants credentials: --nats-nkey, --nats-creds, --nats-user with --nats-password-file, or --nats-token)"
	edgeTimeoutHint   = "(NATS did not answer in time: a \"nats permission violation\" line above means the node's NATS user lacks a right or --nats-inbox-prefix is not the user's inbox prefix, docs/deploying.md#permissions; otherwise check JetStream on the NATS servers)"
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

// ExplainStart is Explain for an edge node whose start failed with err,
// with the edge's flags in the hints, and a hint for a start that timed
// out waiting for NATS.
func ExplainStart(err error) string {
	switch {
	case errors.Is(err, nats.ErrNoServers):
		return err.Error() + " " + edgeNoServersHint
	case errors.Is(err, nats.ErrAuthorization):
		return err.Error() + " " + edgeAuthHint
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error() + " " + edgeTimeoutHint
	}
	return err.Error()
}

// NoToken marks err, an edge's refusal to authenticate a client that was
// given no token, so that Explain says how to give one. Its text is err's.
func NoToken(err error) error { return &noTokenError{err} }

type noTokenError struct{ err error }

func (e *noTokenError) Error() string { return e.err.Error() }
func (e *noTokenError) Unwrap() error { return e.err }
