package dlq

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Letter is a push that will not be delivered, and why.
type Letter struct {
	// Subject is where the push was going: <prefix>.<session>.<priority>.
	Subject  string
	Session  string
	Priority string // high or low; for an unparsable push, its last subject token
	Reason   push.Reason
	Node     string // the node that gave up (or the producer's name)
	// DeadID names this death: a letter written twice with the same DeadID
	// is stored once. Empty (the usual case): a fresh one is minted, so
	// every Write is a death of its own.
	DeadID string
	// Invalid says, for a letter of reason invalid, which header or
	// subject token was invalid and why ("Push-Expires: <error>"); it is
	// stored as Push-Invalid. Empty: no such header, whatever the push
	// itself carried.
	Invalid string
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
// largest headers and its payload until it fits (see trim), noted in
// Push-Trimmed; one that still does not fit — its dead-letter headers alone
// are too large — is ErrTooLarge.
func (l Letter) Msg(prefix string, deadAt time.Time, maxPayload int64) (*nats.Msg, error) {
	m := l.build(prefix, deadAt)
	if _, err := trim(m, maxPayload); err != nil {
		return nil, fmt.Errorf("push %s: %w", m.Header.Get(protocol.HeaderID), err)
	}
	return m, nil
}

// subject is where l is stored under prefix.
func (l Letter) subject(prefix string) string {
	return protocol.DeadLetterSubject(prefix, l.Reason, l.Session, l.Priority)
}

// build is Msg without the trimming.
func (l Letter) build(prefix string, deadAt time.Time) *nats.Msg {
	h := make(nats.Header, len(l.Header)+10)
	for k, v := range l.Header {
		if protocol.IsNATSHeader(k) {
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
	h.Set(protocol.HeaderReason, string(l.Reason))
	h.Set(protocol.HeaderSubject, l.Subject)
	h.Set(protocol.HeaderSession, l.Session)
	h.Set(protocol.HeaderPriority, l.Priority)
	h.Set(protocol.HeaderNode, l.Node)
	h.Set(protocol.HeaderDeadAt, push.FormatTime(deadAt))
	h.Set(protocol.HeaderDeadID, l.DeadID)
	h.Set(nats.MsgIdHdr, l.DeadID)
	h.Del(protocol.HeaderInvalid) // the push's own, if any, is not the edge's word
	if l.Invalid != "" {
		h.Set(protocol.HeaderInvalid, l.Invalid)
	}
	return &nats.Msg{Subject: l.subject(prefix), Header: h, Data: l.Data}
}

// kept are the headers trimming never drops: those that say what the dead
// letter is.
var kept = map[string]bool{
	protocol.HeaderID: true, protocol.HeaderReplayCount: true, protocol.HeaderReason: true,
	protocol.HeaderSubject: true, protocol.HeaderSession: true, protocol.HeaderPriority: true,
	protocol.HeaderNode: true, protocol.HeaderDeadAt: true, protocol.HeaderDeadID: true,
	protocol.HeaderTrimmed: true, protocol.HeaderInvalid: true, nats.MsgIdHdr: true,
}

// trim makes m fit, reporting whether it had to: headers within 64 KiB,
// headers and payload within maxPayload. While the headers alone are too
// large it drops the largest headers that do not say what the dead letter
// is (see kept); then, if the whole is too large, the payload, then more
// headers. Push-Trimmed gets at most two values, however much was dropped:
// "headers <lines> <bytes>" (the header lines dropped and their size on
// the wire) and "payload <bytes>". It sorts the headers once and never
// rescans them: O(n log n) in their number.
func trim(m *nats.Msg, maxPayload int64) (trimmed bool, err error) {
	size := int64(headerSize(m.Header))
	limit := min(maxHeader, maxPayload)
	if size <= limit && size+int64(len(m.Data)) <= maxPayload {
		return false, nil
	}
	t := newTrimming(m.Header, size)
	if !t.dropUntil(limit) {
		return true, ErrTooLarge
	}
	if t.size()+int64(len(m.Data)) > maxPayload {
		t.payload, t.payloadDropped, m.Data = len(m.Data), true, nil
	}
	if !t.dropUntil(limit) {
		return true, ErrTooLarge
	}
	t.apply(m.Header)
	return true, nil
}

// trimming is what trim has decided to drop so far.
type trimming struct {
	left           int64   // the headers' size on the wire less what is dropped, before Push-Trimmed's new values
	fields         []field // the headers trimming may drop, largest first
	dropped        int     // fields[:dropped] are dropped
	lines, bytes   int     // the header lines dropped and their size
	payload        int     // the payload's size, if dropped
	payloadDropped bool
}

// field is one header: its key, number of values and size on the wire.
type field struct {
	key         string
	lines, size int
}

func newTrimming(h nats.Header, size int64) *trimming {
	t := &trimming{left: size, fields: make([]field, 0, len(h))}
	for k, vs := range h {
		if !kept[k] {
			t.fields = append(t.fields, field{key: k, lines: len(vs), size: fieldSize(k, vs)})
		}
	}
	slices.SortFunc(t.fields, func(a, b field) int {
		if a.size != b.size {
			return cmp.Compare(b.size, a.size)
		}
		return strings.Compare(a.key, b.key)
	})
	return t
}

// dropUntil drops the largest headers left until the headers, Push-Trimmed
// included, take at most limit bytes, reporting whether they do.
func (t *trimming) dropUntil(limit int64) bool {
	for t.size() > limit {
		if t.dropped == len(t.fields) {
			return false
		}
		f := t.fields[t.dropped]
		t.dropped++
		t.left -= int64(f.size)
		t.lines += f.lines
		t.bytes += f.size
	}
	return true
}

// size is what the headers will take on the wire once Push-Trimmed has its
// new values.
func (t *trimming) size() int64 {
	n := t.left
	if t.dropped > 0 {
		n += int64(len(protocol.HeaderTrimmed) + len("headers  ") + digits(t.lines) + digits(t.bytes) + 4)
	}
	if t.payloadDropped {
		n += int64(len(protocol.HeaderTrimmed) + len("payload ") + digits(t.payload) + 4)
	}
	return n
}

// apply drops from h what t decided to and notes it in Push-Trimmed.
func (t *trimming) apply(h nats.Header) {
	for _, f := range t.fields[:t.dropped] {
		delete(h, f.key)
	}
	if t.dropped > 0 {
		h.Add(protocol.HeaderTrimmed, "headers "+strconv.Itoa(t.lines)+" "+strconv.Itoa(t.bytes))
	}
	if t.payloadDropped {
		h.Add(protocol.HeaderTrimmed, "payload "+strconv.Itoa(t.payload))
	}
}

// digits is how many decimal digits n >= 0 has.
func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
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
