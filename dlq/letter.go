package dlq

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/pushfabric/pushfabric/bus/protocol"
)

// StreamName is the dead-letter stream.
const StreamName = "PUSH_DLQ"

// SubjectPrefix is where dead letters for pushes under prefix are stored:
// dlq.<prefix>.
func SubjectPrefix(prefix string) string { return "dlq." + prefix }

// Letter is a push that will not be delivered, and why.
type Letter struct {
	// Subject is where the push was going: <prefix>.<session>.<priority>.
	Subject  string
	Session  string
	Priority string // high or low; for an unparsable push, its last subject token
	Reason   string // offline, queue_full, closed, replaced, shutdown, expired, write_error, invalid
	Node     string // the node that gave up (or the producer's name)
	// Header is the push's original headers; Data its payload. Neither is
	// modified.
	Header nats.Header
	Data   []byte
}

// Msg builds the dead-letter message for l under prefix: the original
// headers plus the dead-letter headers, a Push-Id if the push had none, and
// the dedupe id.
func (l Letter) Msg(prefix string, deadAt time.Time) *nats.Msg {
	h := make(nats.Header, len(l.Header)+9)
	for k, v := range l.Header {
		h[k] = v
	}
	if h.Get(protocol.HeaderID) == "" {
		h.Set(protocol.HeaderID, nuid.Next())
	}
	if h.Get(protocol.HeaderReplayCount) == "" {
		h.Set(protocol.HeaderReplayCount, "0")
	}
	h.Set(protocol.HeaderReason, l.Reason)
	h.Set(protocol.HeaderSubject, l.Subject)
	h.Set(protocol.HeaderSession, l.Session)
	h.Set(protocol.HeaderPriority, l.Priority)
	h.Set(protocol.HeaderNode, l.Node)
	h.Set(protocol.HeaderDeadAt, deadAt.UTC().Format(time.RFC3339Nano))
	h.Set(nats.MsgIdHdr, MsgID(h))
	return &nats.Msg{
		Subject: SubjectPrefix(prefix) + "." + l.Reason + "." + l.Session + "." + l.Priority,
		Header:  h,
		Data:    l.Data,
	}
}

// MsgID is the dedupe id of a dead letter with headers h:
// <Push-Id>.<Push-Replay-Count>.
func MsgID(h nats.Header) string {
	n, _ := strconv.Atoi(h.Get(protocol.HeaderReplayCount))
	return h.Get(protocol.HeaderID) + "." + strconv.Itoa(n)
}
