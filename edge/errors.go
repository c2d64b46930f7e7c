package edge

import (
	"errors"
	"fmt"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Sentinel errors.
var (
	// ErrClosed: the connection (or server) is closed or closing and takes no
	// more frames.
	ErrClosed = errors.New("edge: connection closed")
	// ErrQueueFull: the session's queue for that priority is at its bound.
	ErrQueueFull = errors.New("edge: queue full")
	// ErrFrameTooLarge: the frame can never fit the queue or the wire limit.
	ErrFrameTooLarge = errors.New("edge: frame too large")
	// ErrServerClosed is returned by the Serve methods after Shutdown.
	ErrServerClosed = errors.New("edge: server closed")
	// ErrNotStarted is returned by the Serve methods before Start.
	ErrNotStarted = errors.New("edge: server not started")
)

// ProtocolError is a recoverable error: it is sent to the client as an error
// frame and the connection stays open. Handlers return one to refuse a
// request with a code the client can act on.
type ProtocolError struct {
	Code    wire.ErrorCode // stable, machine-readable: a wire error frame's Name
	Message string         // for people
}

func (e *ProtocolError) Error() string {
	if e.Message == "" {
		return "protocol error: " + string(e.Code)
	}
	return "protocol error: " + string(e.Code) + ": " + e.Message
}

// TransportError ends the connection: the socket failed, or a handler
// decided the connection cannot go on.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// DeadLetteredError is what TryPush returns under [TryPushDeadLetters] when it
// handed the frame to the sink. It wraps [ErrQueueFull] or [ErrClosed].
type DeadLetteredError struct {
	Reason push.Reason
	Err    error
}

func (e *DeadLetteredError) Error() string {
	return fmt.Sprintf("%v: dead-lettered as %s", e.Err, e.Reason)
}
func (e *DeadLetteredError) Unwrap() error { return e.Err }

// Preallocated so that overload costs no allocation.
var (
	errDeadQueueFull = &DeadLetteredError{Reason: push.ReasonQueueFull, Err: ErrQueueFull}
	errDeadClosed    = &DeadLetteredError{Reason: push.ReasonClosed, Err: ErrClosed}
	errDeadShutdown  = &DeadLetteredError{Reason: push.ReasonShutdown, Err: ErrClosed}
)
