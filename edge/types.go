package edge

import (
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Frame is what a connection writes to its client; see [wire.Frame].
type Frame = wire.Frame

// Envelope is one push as the edge queues it: the frame the client gets,
// and what only the server reads. Nothing but Frame goes on the wire.
type Envelope struct {
	// Frame is the push; the edge sets its Type and Priority.
	Frame Frame
	// Expires, when not zero, is the time after which the push is no
	// longer written but dead-lettered as expired.
	Expires time.Time
	// Sent, when not zero, is when the producer sent the push. The edge
	// carries it for the receipt (the delivery latency, say).
	Sent time.Time
	// Receipt is told what becomes of the push. Nil (a push made in the
	// process, typically): its death goes to the server's DeadLetterSink
	// and nothing else is told.
	Receipt Receipt
}

// Receipt is a push's reply path, back to whoever queued it: the edge
// tells it, exactly once, what became of the push — written, dead, or
// moved with its session to another node. A receipt-push (one whose
// Frame.WantsReceipt is set), once taken to be written, is told Written
// when its write returns and, once, what became of it in the connection's
// window of unconfirmed pushes: Confirmed (if the receipt is
// [Confirmable]), Dead (reason unconfirmed: its receipt timeout passed)
// or Moved (the connection ended). That second call may come first: the
// client can confirm a push before the write that carried it returns. A push the edge hands to a
// newer connection of its session on this node keeps its receipt and is
// settled there; a push that Push or TryPush refused without
// dead-lettering it is never settled: the caller still holds it. Nor is a
// push the edge counts lost (pushfabric_connection_pushes_lost_total).
//
// The methods run on the edge's goroutines (the write path, a closing
// connection) and on its callers' (a producer's TryPush, CloseReplaced's
// caller): they must be quick and must not block. On the edge's
// goroutines a panic in one is contained like a hook's ([Hooks]), one in
// Dead as one in the dead-letter sink. The *Envelope they get points into
// the edge's buffers and is theirs only for the call.
type Receipt interface {
	// Written: the write that carried the push returned; its bytes are in
	// the client's socket.
	Written(e *Envelope)
	// Dead: the push will not be written on this node, for dl.Reason. The
	// receipt takes the dead letter in the place of the server's
	// DeadLetterSink, which does not see it.
	Dead(dl DeadLetter)
	// Moved: a newer connection on another node took the session while
	// the push was queued ([Conn.CloseReplaced]), or, for a receipt-push,
	// the connection ended (for any reason) before the client confirmed
	// it; the receipt makes the push follow the session there, or
	// accounts for it otherwise (for a receipt-push: as unconfirmed).
	Moved(session string, e *Envelope)
}

// Confirmable is a [Receipt] that hears of its push's confirmation: the
// client sent a receipt frame naming the push's id while the push was in
// its connection's window of unconfirmed pushes. The receipt is told
// nothing more after Confirmed. It runs on the connection's reader
// goroutine and, like the other methods, must be quick.
type Confirmable interface {
	Receipt
	Confirmed(e *Envelope)
}

// DeadLetter is a push that will not be written.
type DeadLetter struct {
	Envelope
	Session  string
	Priority push.Priority
	Reason   push.Reason
}

// DeadLetterSink takes the pushes without a receipt that will not be
// written. DeadLetter is called from the connection's writer and from
// producers' calls; it must not block (buffer and write asynchronously)
// and must account for every push it is given.
type DeadLetterSink interface {
	DeadLetter(dl DeadLetter)
}
