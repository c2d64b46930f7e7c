package producer

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/push"
)

// ackNone is the Push-Ack value of a Publish push, shared by all of them
// (headers are only read once built).
var ackNone = []string{"none"}

// ring remembers the pushes sent by Publish during their status window, by
// sequence number (the last token of their reply subject), so that a "no
// responders" can be turned into a dead letter. Slots are reused, payload
// buffers included, so tracking a push costs no allocation once the ring
// has grown to the publish rate. Not safe for concurrent use.
type ring struct {
	slots []slot
	head  uint64 // the last sequence number given out; they start at 1
	tail  uint64 // the oldest sequence number that may still be tracked
	live  int    // tracked pushes
}

type slot struct {
	seq     uint64 // 0: free
	until   time.Time
	subject string
	header  nats.Header
	data    []byte // a copy of the payload: the caller may reuse its own
	session string
	prio    push.Priority
}

const minRing = 1024

// add tracks m until the given time and returns its sequence number, or
// false if limit pushes are tracked already.
func (r *ring) add(m *nats.Msg, session string, prio push.Priority, until time.Time, limit int) (uint64, bool) {
	if r.tail == 0 {
		r.tail = 1
	}
	if r.head+2-r.tail > uint64(len(r.slots)) { // no slot free between the oldest and the newest
		if len(r.slots) >= limit {
			return 0, false
		}
		r.grow(min(limit, 2*max(len(r.slots), minRing/2)))
	}
	r.head++
	s := &r.slots[r.head%uint64(len(r.slots))]
	s.seq, s.until, s.subject, s.header, s.session, s.prio = r.head, until, m.Subject, m.Header, session, prio
	s.data = append(s.data[:0], m.Data...)
	r.live++
	return r.head, true
}

// grow moves the tracked pushes into n slots.
func (r *ring) grow(n int) {
	slots := make([]slot, n)
	for seq := r.tail; seq <= r.head; seq++ {
		if old := r.slots[seq%uint64(len(r.slots))]; old.seq == seq {
			slots[seq%uint64(n)] = old
		}
	}
	r.slots = slots
}

// take forgets push seq and returns its dead letter (reason offline), if it
// was still tracked.
func (r *ring) take(seq uint64) (dlq.Letter, bool) {
	if len(r.slots) == 0 || seq < r.tail || seq > r.head {
		return dlq.Letter{}, false
	}
	s := &r.slots[seq%uint64(len(r.slots))]
	if s.seq != seq {
		return dlq.Letter{}, false
	}
	l := dlq.Letter{Subject: s.subject, Session: s.session, Priority: s.prio.String(), Reason: push.ReasonOffline,
		Header: s.header, Data: append([]byte(nil), s.data...)}
	r.free(s)
	return l, true
}

// expire forgets the pushes whose window ended by now, oldest first.
func (r *ring) expire(now time.Time) {
	for ; r.tail <= r.head && r.tail != 0; r.tail++ {
		s := &r.slots[r.tail%uint64(len(r.slots))]
		if s.seq == r.tail {
			if s.until.After(now) {
				return
			}
			r.free(s)
		}
	}
}

func (r *ring) free(s *slot) {
	s.seq, s.header, s.subject, s.session = 0, nil, "", ""
	r.live--
}
