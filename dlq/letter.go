package dlq

import (
	"errors"
	"fmt"
	"math"
	"net/textproto"
	"strconv"
	"strings"
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
	Reason   string // offline, queue_full, closed, replaced, shutdown, expired, write_error, invalid, unconfirmed
	Node     string // the node that gave up (or the producer's name)
	// DeadID names this death: a letter written twice with the same DeadID
	// is stored once. Empty (the usual case): a fresh one is minted, so
	// every Write is a death of its own.
	DeadID string
	// Header is the push's original headers; Data its payload. Neither is
	// modified.
	Header nats.Header
	Data   []byte
}

// OrigPrefix is put before the key of every Nats-* header of the original
// push (Nats-TTL becomes Push-Orig-Nats-TTL): JetStream acts on such
// headers when it stores a message, and must not act on a push's. Replay
// restores none of them.
const OrigPrefix = "Push-Orig-"

// maxHeader is the most header bytes JetStream stores with a message.
const maxHeader = math.MaxUint16

// ErrTooLarge: a dead letter does not fit the server's limits even with its
// payload and every header it may lose dropped.
var ErrTooLarge = errors.New("dead letter too large to store")

// Msg builds the dead-letter message for l under prefix: the original
// headers (Nats-* ones renamed, see OrigPrefix) plus the dead-letter
// headers, a Push-Id if the push had none, and Push-Dead-Id, which is also
// its Nats-Msg-Id. A letter larger than maxPayload (the server's, from
// nats.Conn.MaxPayload), or with more than 64 KiB of headers, loses its
// largest headers and its payload until it fits (see trim), each noted in
// Push-Trimmed; one that still does not fit is ErrTooLarge.
func (l Letter) Msg(prefix string, deadAt time.Time, maxPayload int64) (*nats.Msg, error) {
	m := l.build(prefix, deadAt)
	if _, err := trim(m, maxPayload); err != nil {
		return nil, fmt.Errorf("push %s: %w", m.Header.Get(protocol.HeaderID), err)
	}
	return m, nil
}

// build is Msg without the trimming.
func (l Letter) build(prefix string, deadAt time.Time) *nats.Msg {
	h := make(nats.Header, len(l.Header)+10)
	for k, v := range l.Header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			k = OrigPrefix + k
		}
		h[k] = v
	}
	if h.Get(protocol.HeaderID) == "" {
		h.Set(protocol.HeaderID, nuid.Next())
	}
	if h.Get(protocol.HeaderReplayCount) == "" {
		h.Set(protocol.HeaderReplayCount, "0")
	}
	if l.DeadID == "" {
		l.DeadID = nuid.Next()
	}
	h.Set(protocol.HeaderReason, l.Reason)
	h.Set(protocol.HeaderSubject, l.Subject)
	h.Set(protocol.HeaderSession, l.Session)
	h.Set(protocol.HeaderPriority, l.Priority)
	h.Set(protocol.HeaderNode, l.Node)
	h.Set(protocol.HeaderDeadAt, deadAt.UTC().Format(time.RFC3339Nano))
	h.Set(protocol.HeaderDeadID, l.DeadID)
	h.Set(nats.MsgIdHdr, l.DeadID)
	return &nats.Msg{
		Subject: SubjectPrefix(prefix) + "." + l.Reason + "." + l.Session + "." + l.Priority,
		Header:  h,
		Data:    l.Data,
	}
}

// kept are the headers trimming never drops: those that say what the dead
// letter is.
var kept = map[string]bool{
	protocol.HeaderID: true, protocol.HeaderReplayCount: true, protocol.HeaderReason: true,
	protocol.HeaderSubject: true, protocol.HeaderSession: true, protocol.HeaderPriority: true,
	protocol.HeaderNode: true, protocol.HeaderDeadAt: true, protocol.HeaderDeadID: true,
	protocol.HeaderTrimmed: true, nats.MsgIdHdr: true,
}

// trim makes m fit, reporting whether it had to: headers within 64 KiB,
// headers and payload within maxPayload. While the headers alone are too
// large it drops the largest header that does not say what the dead letter
// is; then, if the whole is too large, the payload, then more headers. Each
// is noted in Push-Trimmed: "payload <bytes>", "header <key> <bytes>".
func trim(m *nats.Msg, maxPayload int64) (trimmed bool, err error) {
	limit := min(maxHeader, maxPayload)
	fits := func() bool { return int64(headerSize(m.Header)) <= limit }
	for !fits() {
		if !trimHeader(m.Header) {
			return true, ErrTooLarge
		}
		trimmed = true
	}
	if int64(headerSize(m.Header)+len(m.Data)) > maxPayload {
		m.Header.Add(protocol.HeaderTrimmed, "payload "+strconv.Itoa(len(m.Data)))
		m.Data, trimmed = nil, true
	}
	for !fits() {
		if !trimHeader(m.Header) {
			return true, ErrTooLarge
		}
	}
	return trimmed, nil
}

// trimHeader drops the largest header trimming may drop, reporting whether
// there was one.
func trimHeader(h nats.Header) bool {
	key, size := "", 0
	for k := range h {
		if n := fieldSize(k, h[k]); !kept[k] && (n > size || n == size && k < key) {
			key, size = k, n
		}
	}
	if key == "" {
		return false
	}
	delete(h, key)
	h.Add(protocol.HeaderTrimmed, "header "+key+" "+strconv.Itoa(size))
	return true
}

// headerSize is how many bytes h takes on the wire, as nats.go encodes it:
// "NATS/1.0\r\n", "key: value\r\n" per value, "\r\n".
func headerSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		n += fieldSize(k, vs)
	}
	return n
}

func fieldSize(k string, vs []string) int {
	n := 0
	for _, v := range vs {
		n += len(k) + len(textproto.TrimString(v)) + 4
	}
	return n
}
