package producer

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// ackNone is the Push-Ack value of a Publish push, shared by all of them
// (headers are only read once built).
var ackNone = []string{"none"}

// ring remembers the pushes sent by Publish until NATS can no longer say
// that nobody holds their session (see Producer.mark), by sequence number
// (the last token of their reply subject), so that a "no responders" can
// be turned into a dead letter. A slot keeps what the dead letter needs
// and no more: the subject, the header values the producer set (the
// others, of a push's options, in a copy of the headers only if there
// were any), a copy of the payload in a buffer the slot reuses. So
// tracking a push costs no allocation once the ring has grown to the
// pushes in flight, and the ring holds few pointers for the garbage
// collector to follow. Not safe for concurrent use.
type ring struct {
	slots []slot
	head  uint64 // the last sequence number given out; they start at 1
	tail  uint64 // the oldest sequence number that may still be tracked
	live  int    // tracked pushes
}

type slot struct {
	seq   uint64        // 0: free
	until time.Duration // on the producer's clock (Producer.clock)
	// The push as sent: its subject, the values of the headers the
	// producer sets, the other headers (nil if none) and the payload.
	subject, id, sentAt string
	header              nats.Header
	data                []byte
	// The dead letter's session and priority: the session, or for a group
	// push its group (group set).
	name  string
	group bool
	prio  push.Priority
}

const minRing = 1024

// add takes a slot for a push tracked until the given time and returns it
// with its sequence number, or false if limit pushes are tracked already.
func (r *ring) add(until time.Duration, limit int) (*slot, bool) {
	if r.tail == 0 {
		r.tail = 1
	}
	if r.head+2-r.tail > uint64(len(r.slots)) { // no slot free between the oldest and the newest
		if len(r.slots) >= limit {
			return nil, false
		}
		r.grow(min(limit, 2*max(len(r.slots), minRing/2)))
	}
	r.head++
	s := &r.slots[r.head%uint64(len(r.slots))]
	s.seq, s.until = r.head, until
	r.live++
	return s, true
}

// grow moves the tracked pushes into n slots; free ones keep their payload
// buffers where no tracked push goes.
func (r *ring) grow(n int) {
	slots := make([]slot, n)
	copy(slots, r.slots)
	for i := range r.slots {
		if r.slots[i].seq != 0 {
			slots[i] = slot{}
		}
	}
	for i := range r.slots {
		if old := &r.slots[i]; old.seq != 0 {
			slots[old.seq%uint64(n)] = *old
		}
	}
	r.slots = slots
}

// keep records in s the push m as sent, with id and sentAt its Push-Id and
// Push-Sent-At; own counts the headers the producer set itself, whose
// values the slot keeps: the others are copied.
func (s *slot) keep(m *nats.Msg, own int, id, sentAt string) {
	s.subject, s.id, s.sentAt = m.Subject, id, sentAt
	s.header = nil
	if len(m.Header) > own {
		s.header = make(nats.Header, len(m.Header))
		for k, v := range m.Header {
			s.header[k] = append([]string(nil), v...)
		}
	}
	s.data = append(s.data[:0], m.Data...)
}

// subject is the subject push seq was sent to, if it is tracked.
func (r *ring) subject(seq uint64) (string, bool) {
	if len(r.slots) == 0 || seq < r.tail || seq > r.head {
		return "", false
	}
	s := &r.slots[seq%uint64(len(r.slots))]
	return s.subject, s.seq == seq
}

// take forgets push seq and returns its dead letter (reason offline), if it
// was still tracked, with the headers it was sent with.
func (r *ring) take(seq uint64) (dlq.Letter, bool) {
	if len(r.slots) == 0 || seq < r.tail || seq > r.head {
		return dlq.Letter{}, false
	}
	s := &r.slots[seq%uint64(len(r.slots))]
	if s.seq != seq {
		return dlq.Letter{}, false
	}
	h := s.header
	if h == nil {
		h = make(nats.Header, 4)
	}
	h[protocol.HeaderID], h[protocol.HeaderSentAt], h[protocol.HeaderAck] = []string{s.id}, []string{s.sentAt}, ackNone
	session := s.name
	if s.group {
		h[protocol.HeaderGroup] = []string{s.name}
		session = protocol.GroupLetterSession(s.name)
	}
	l := dlq.Letter{Subject: s.subject, Session: session, Priority: s.prio.String(), Reason: push.ReasonOffline,
		Header: h, Data: append([]byte(nil), s.data...)}
	r.free(s)
	return l, true
}

// expire forgets the pushes whose window ended by now, oldest first.
func (r *ring) expire(now time.Duration) {
	for ; r.tail <= r.head && r.tail != 0; r.tail++ {
		s := &r.slots[r.tail%uint64(len(r.slots))]
		if s.seq == r.tail {
			if s.until > now {
				return
			}
			r.free(s)
		}
	}
}

// release forgets the pushes up to seq: NATS said of none of them that
// nobody held its session.
func (r *ring) release(seq uint64) {
	for ; r.tail <= min(seq, r.head) && r.tail != 0; r.tail++ {
		if s := &r.slots[r.tail%uint64(len(r.slots))]; s.seq == r.tail {
			r.free(s)
		}
	}
}

// free forgets a slot's push; the slot keeps its payload buffer for the
// next.
func (r *ring) free(s *slot) {
	s.seq, s.subject, s.id, s.sentAt, s.header, s.name = 0, "", "", "", nil, ""
	r.live--
}
