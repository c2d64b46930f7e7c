package producer

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"pgregory.net/rapid"

	"github.com/pushfabric/pushfabric/push"
)

// The ring against a map: whatever is added, taken and expired, a push is
// taken back exactly as it was added (its payload a copy), only while it is
// tracked, and never more pushes than the limit are tracked.
func TestRingTracksLikeAMap(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var r ring
		limit := rapid.IntRange(1, 3000).Draw(rt, "limit")
		type entry struct {
			until   time.Duration
			payload string
			typed   bool // sent with a Content-Type, which the dead letter keeps
		}
		model := map[uint64]entry{}
		now := time.Duration(0) // on the producer's clock
		var issued []uint64
		type letter struct {
			l  dlq.Letter
			id string
		}
		var taken []letter // dead letters given out: the slots they came from are reused
		buf := []byte("payload")
		rt.Repeat(map[string]func(*rapid.T){
			"": func(rt *rapid.T) { // after each action
				if r.live != len(model) || len(r.slots) > limit {
					rt.Fatalf("live %d, model %d, slots %d of %d", r.live, len(model), len(r.slots), limit)
				}
				for _, t := range taken {
					if string(t.l.Data) != t.id || t.l.Header.Get("Push-Id") != t.id {
						rt.Fatalf("dead letter %s changed: %q, %v", t.id, t.l.Data, t.l.Header)
					}
				}
			},
			"add": func(rt *rapid.T) {
				n := rapid.IntRange(1, 400).Draw(rt, "n")
				for range n {
					payload := fmt.Sprintf("p%d", len(issued))
					buf = append(buf[:0], payload...)
					until := now + time.Duration(rapid.IntRange(0, 100).Draw(rt, "window"))*time.Millisecond
					typed := len(issued)%3 == 0
					s, ok := r.add(until, limit)
					if ok {
						s.name, s.prio = "s", push.High
						m := &nats.Msg{Subject: "push.s.high", Header: nats.Header{"Push-Id": {payload}, "Push-Sent-At": {"t"}, "Push-Ack": {"none"}}, Data: buf}
						if typed {
							m.Header.Set("Content-Type", "text/plain")
						}
						s.keep(m, 3, payload, "t")
					}
					if !ok {
						if len(r.slots) < limit {
							rt.Fatalf("refused with %d of %d slots", len(r.slots), limit)
						}
						continue
					}
					buf = append(buf[:0], "overwritten"...) // the caller reuses its buffer
					model[s.seq] = entry{until, payload, typed}
					issued = append(issued, s.seq)
				}
			},
			"take": func(rt *rapid.T) {
				if len(issued) == 0 {
					rt.Skip("nothing issued")
				}
				seq := rapid.SampledFrom(issued).Draw(rt, "seq")
				l, ok := r.take(seq)
				e, want := model[seq]
				if ok != want || ok && (string(l.Data) != e.payload || l.Reason != "offline" || l.Session != "s" ||
					l.Header.Get("Push-Id") != e.payload || l.Subject != "push.s.high" || l.Header.Get("Push-Ack") != "none" ||
					(l.Header.Get("Content-Type") == "text/plain") != e.typed) {
					rt.Fatalf("take %d: %+v %v; want %v %q", seq, l, ok, want, e.payload)
				}
				if ok {
					taken = append(taken, letter{l, e.payload})
				}
				delete(model, seq)
			},
			"release": func(rt *rapid.T) {
				if len(issued) == 0 {
					rt.Skip("nothing issued")
				}
				seq := rapid.SampledFrom(issued).Draw(rt, "through")
				r.release(seq)
				for s := range model {
					if s <= seq {
						delete(model, s)
					}
				}
			},
			"expire": func(rt *rapid.T) {
				now += time.Duration(rapid.IntRange(0, 60).Draw(rt, "step")) * time.Millisecond
				r.expire(now)
				// The ring forgets, oldest first, what has run out; something
				// newer may wait behind a longer window.
				for seq, e := range model {
					if seq < r.tail {
						if e.until > now {
							rt.Fatalf("push %d expired before %v", seq, e.until)
						}
						delete(model, seq)
					}
				}
			},
		})
	})
}
