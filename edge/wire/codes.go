package wire

// CloseReason is the stable code a connection is closed with: the Name of
// a close frame, and the reason of a WebSocket close frame with the code
// [CloseReason.WSCode]. Clients decide from it whether to reconnect.
type CloseReason string

// Close reasons.
const (
	CloseNormal   CloseReason = "normal"   // the client or the application closed the connection
	CloseReplaced CloseReason = "replaced" // a newer connection took the session; do not reconnect
	CloseShutdown CloseReason = "shutdown" // the node is stopping; reconnect elsewhere
	CloseAuth     CloseReason = "auth"     // authentication failed; do not reconnect with the same token
	CloseTooSlow  CloseReason = "too_slow" // the client did not read fast enough; reconnect
	CloseProtocol CloseReason = "protocol" // the client broke the protocol (a client bug); do not reconnect
	CloseIdle     CloseReason = "idle"     // nothing was heard from the client for the idle timeout; reconnect

	CloseRevoked      CloseReason = "revoked"       // the session was kicked; do not reconnect
	CloseTokenExpired CloseReason = "token_expired" // the token's exp passed without a refresh; reconnect with a fresh token
	CloseOverloaded   CloseReason = "overloaded"    // the node is at a limit; reconnect (with backoff), perhaps elsewhere
)

// CloseReasons lists every close reason, for pre-initialising metrics.
var CloseReasons = []CloseReason{
	CloseNormal, CloseReplaced, CloseShutdown, CloseAuth, CloseTooSlow, CloseProtocol, CloseIdle,
	CloseRevoked, CloseTokenExpired, CloseOverloaded,
}

// Meaning says in a few words what happened, for a person reading the
// reason: "a newer connection took the session" for CloseReplaced; empty
// for a reason this version does not know.
func (r CloseReason) Meaning() string {
	switch r {
	case CloseNormal:
		return "the client or the application closed the connection"
	case CloseReplaced:
		return "a newer connection took the session"
	case CloseShutdown:
		return "the node is stopping"
	case CloseAuth:
		return "authentication failed"
	case CloseTooSlow:
		return "the client did not read fast enough"
	case CloseProtocol:
		return "the client broke the protocol"
	case CloseIdle:
		return "nothing was heard from the client for the idle timeout"
	case CloseRevoked:
		return "the session was revoked"
	case CloseTokenExpired:
		return "the token expired"
	case CloseOverloaded:
		return "the node is overloaded"
	}
	return ""
}

// WSCode is the WebSocket status code of a close reason: a registered code
// where one fits, the private range (4000-4999) otherwise, 1011 for a
// reason this version does not know.
func (r CloseReason) WSCode() uint16 {
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
	case CloseRevoked:
		return 4004
	case CloseTokenExpired:
		return 4005
	case CloseOverloaded:
		return 4006
	}
	return 1011
}

// ErrorCode is the stable, machine-readable code of an error frame (its
// Name). The edge and the NATS request path send the codes below; a
// backend may answer a request with codes of its own (any valid name).
type ErrorCode string

// Error codes the edge sends about a frame or a request.
const (
	CodeMalformed       ErrorCode = "malformed"         // the frame did not decode
	CodeUnexpectedFrame ErrorCode = "unexpected_frame"  // a frame type the client may not send
	CodeUnknownMethod   ErrorCode = "unknown_method"    // no handler for the method
	CodeDuplicateID     ErrorCode = "duplicate_id"      // a request id already in flight
	CodeTooManyRequests ErrorCode = "too_many_requests" // over the per-connection request limit
	CodeRateLimited     ErrorCode = "rate_limited"      // over the per-connection request rate; try again later
	CodeCanceled        ErrorCode = "canceled"          // the client canceled the request
	CodeInternal        ErrorCode = "internal"          // the handler failed; details are in the server log
	CodeTooLarge        ErrorCode = "too_large"         // a response frame over the frame size or a field limit
)

// Error codes of requests the edge forwards to backends over NATS.
const (
	CodeInvalidMethod ErrorCode = "invalid_method" // the method is not a valid name
	CodeNoHandler     ErrorCode = "no_handler"     // no backend serves the method
	CodeTimeout       ErrorCode = "timeout"        // no reply within the node's request timeout
	CodeTooSlow       ErrorCode = "too_slow"       // the client read more slowly than the backend replied
	CodeUnavailable   ErrorCode = "unavailable"    // the node could not forward the request (or the backend is stopping)
	CodeBackendError  ErrorCode = "backend_error"  // a backend answered with a code that is not a valid name
)
