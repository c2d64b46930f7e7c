package push

// Reason says why a push was dead-lettered. Each reason is a subject token
// of the dead-letter stream (dlq.<prefix>.<reason>.<session>.<priority>)
// and a metric label; the set is fixed.
type Reason string

// Dead-letter reasons.
const (
	ReasonOffline     Reason = "offline"     // no node held the session
	ReasonQueueFull   Reason = "queue_full"  // the session's queue was full
	ReasonClosed      Reason = "closed"      // the connection ended with the push still queued
	ReasonReplaced    Reason = "replaced"    // a takeover could not hand the push to the new connection
	ReasonShutdown    Reason = "shutdown"    // the node was stopping: still queued at the drain deadline, or arrived after the sessions were closed
	ReasonExpired     Reason = "expired"     // Push-Expires passed before the push was written
	ReasonWriteError  Reason = "write_error" // writing to the client failed
	ReasonInvalid     Reason = "invalid"     // the push could not be parsed or encoded
	ReasonUnconfirmed Reason = "unconfirmed" // a Push-Ack: received push whose connection ended before the client confirmed it, with no node holding the session
)

// Reasons lists every reason, for pre-initialising metrics and for
// checking a reason read from outside.
var Reasons = []Reason{
	ReasonOffline, ReasonQueueFull, ReasonClosed, ReasonReplaced,
	ReasonShutdown, ReasonExpired, ReasonWriteError, ReasonInvalid, ReasonUnconfirmed,
}

// Known reports whether r is one of [Reasons].
func (r Reason) Known() bool {
	for _, k := range Reasons {
		if r == k {
			return true
		}
	}
	return false
}
