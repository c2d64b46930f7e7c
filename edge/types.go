package edge

import (
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Frame is the unit the edge queues and writes; see [wire.Frame].
type Frame = wire.Frame

// DeadLetter is a push that will not be written.
type DeadLetter struct {
	Session  string
	Priority push.Priority
	Frame    Frame
	Reason   push.Reason
}

// DeadLetterSink takes pushes that will not be written. DeadLetter is called
// from the connection's writer and from producers' calls; it must not block
// (buffer and write asynchronously) and must account for every push it is
// given.
type DeadLetterSink interface {
	DeadLetter(dl DeadLetter)
}
