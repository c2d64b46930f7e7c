package producer

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
			until   time.Time
			payload string
		}
		model := map[uint64]entry{}
		now := time.Unix(1_000_000, 0)
		var issued []uint64
		buf := []byte("payload")
		rt.Repeat(map[string]func(*rapid.T){
			"": func(rt *rapid.T) { // after each action
				if r.live != len(model) || len(r.slots) > limit {
					rt.Fatalf("live %d, model %d, slots %d of %d", r.live, len(model), len(r.slots), limit)
				}
			},
			"add": func(rt *rapid.T) {
				n := rapid.IntRange(1, 400).Draw(rt, "n")
				for range n {
					payload := fmt.Sprintf("p%d", len(issued))
					buf = append(buf[:0], payload...)
					until := now.Add(time.Duration(rapid.IntRange(0, 100).Draw(rt, "window")) * time.Millisecond)
					seq, ok := r.add(&nats.Msg{Subject: "push.s.high", Data: buf}, "s", push.High, until, limit)
					if !ok {
						if len(r.slots) < limit {
							rt.Fatalf("refused with %d of %d slots", len(r.slots), limit)
						}
						continue
					}
					buf = append(buf[:0], "overwritten"...) // the caller reuses its buffer
					model[seq] = entry{until, payload}
					issued = append(issued, seq)
				}
			},
			"take": func(rt *rapid.T) {
				if len(issued) == 0 {
					rt.Skip("nothing issued")
				}
				seq := rapid.SampledFrom(issued).Draw(rt, "seq")
				l, ok := r.take(seq)
				e, want := model[seq]
				if ok != want || ok && (string(l.Data) != e.payload || l.Reason != "offline" || l.Session != "s") {
					rt.Fatalf("take %d: %+v %v; want %v %q", seq, l, ok, want, e.payload)
				}
				delete(model, seq)
			},
			"expire": func(rt *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 60).Draw(rt, "step")) * time.Millisecond)
				r.expire(now)
				// The ring forgets, oldest first, what has run out; something
				// newer may wait behind a longer window.
				for seq, e := range model {
					if seq < r.tail {
						if e.until.After(now) {
							rt.Fatalf("push %d expired before %v", seq, e.until)
						}
						delete(model, seq)
					}
				}
			},
		})
	})
}
