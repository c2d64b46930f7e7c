package edge

import "github.com/pushfabric/pushfabric/edge/wire"

// Frame is the unit the edge queues and writes; see [wire.Frame].
type Frame = wire.Frame

// Priority of a push; see [wire.Priority].
type Priority = wire.Priority

// The two priorities.
const (
	High = wire.High
	Low  = wire.Low
)

// Reason says why a push was dead-lettered. Each reason is a NATS subject
// token and a metric label; the set is fixed by the design.
type Reason string

// Dead-letter reasons.
const (
	ReasonOffline    Reason = "offline"     // no node held the session
	ReasonQueueFull  Reason = "queue_full"  // the session's queue was full
	ReasonClosed     Reason = "closed"      // the connection ended with the push still queued
	ReasonReplaced   Reason = "replaced"    // a takeover could not hand the push to the new connection
	ReasonShutdown   Reason = "shutdown"    // the node was stopping: still queued at the drain deadline, or arrived after the sessions were closed
	ReasonExpired    Reason = "expired"     // Expires passed before the push was written
	ReasonWriteError Reason = "write_error" // writing to the client failed
	ReasonInvalid    Reason = "invalid"     // the push could not be parsed or encoded
)

// Reasons lists every reason, for pre-initialising metrics.
var Reasons = []Reason{
	ReasonOffline, ReasonQueueFull, ReasonClosed, ReasonReplaced,
	ReasonShutdown, ReasonExpired, ReasonWriteError, ReasonInvalid,
}

// CloseReason is the stable code a connection is closed with. It is sent to
// the client in a close frame (and as the WebSocket close reason).
type CloseReason string

// Close reasons.
const (
	CloseNormal   CloseReason = "normal"   // the client or the application closed the connection
	CloseReplaced CloseReason = "replaced" // a newer connection took the session
	CloseShutdown CloseReason = "shutdown" // the node is stopping; reconnect elsewhere
	CloseAuth     CloseReason = "auth"     // authentication failed
	CloseTooSlow  CloseReason = "too_slow" // the client did not read fast enough
	CloseProtocol CloseReason = "protocol" // the client broke the protocol
	CloseIdle     CloseReason = "idle"     // nothing was heard from the client for the idle timeout
)

// CloseReasons lists every close reason, for pre-initialising metrics.
var CloseReasons = []CloseReason{
	CloseNormal, CloseReplaced, CloseShutdown, CloseAuth, CloseTooSlow, CloseProtocol, CloseIdle,
}

// wsCloseCode maps a close reason to its WebSocket status code: registered
// codes where one fits, the private range (4000-4999) otherwise.
func (r CloseReason) wsCloseCode() uint16 {
	switch r {
	case CloseNormal:
		return 1000
	case CloseShutdown:
		return 1001
	case CloseProtocol:
		return 1002
	case CloseReplaced:
		return 4000
	case CloseAuth:
		return 4001
	case CloseTooSlow:
		return 4002
	case CloseIdle:
		return 4003
	}
	return 1011
}

// DeadLetter is a push that will not be written.
type DeadLetter struct {
	Session  string
	Priority Priority
	Frame    Frame
	Reason   Reason
}

// DeadLetterSink takes pushes that will not be written. DeadLetter is called
// from the connection's writer and from producers' calls; it must not block
// (buffer and write asynchronously) and must account for every push it is
// given.
type DeadLetterSink interface {
	DeadLetter(dl DeadLetter)
}

// ValidSession reports whether id is a well-formed session id; see
// [wire.ValidSession].
func ValidSession(id string) bool { return wire.ValidSession(id) }
