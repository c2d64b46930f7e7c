package edge

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// takeAll drains an outbox the way the writer does and returns the ids.
func takeAll(o *outbox, cfg *Config) []string {
	var ids []string
	var now lazyNow
	for {
		src := o.next(cfg, &now)
		if src == fromNone {
			return ids
		}
		ids = append(ids, o.take(src, cfg, &now).e.Frame.ID)
	}
}

func queueIDs(o *outbox, p push.Priority, ids ...string) {
	for _, id := range ids {
		o.queue(p).push(item{e: Envelope{Frame: Frame{Type: wire.TypePush, Priority: p, ID: id}}})
	}
}

func TestFairnessSequence(t *testing.T) {
	var o outbox
	cfg := Config{MaxHighBeforeLow: 3}
	queueIDs(&o, push.High, "H1", "H2", "H3", "H4", "H5", "H6")
	queueIDs(&o, push.Low, "L1", "L2")
	got := strings.Join(takeAll(&o, &cfg), " ")
	if want := "H1 H2 H3 L1 H4 H5 H6 L2"; got != want {
		t.Fatalf("order %q; want %q", got, want)
	}
}

func TestStrictPriority(t *testing.T) {
	var o outbox
	cfg := Config{} // no counter, no slice
	queueIDs(&o, push.Low, "L1", "L2")
	queueIDs(&o, push.High, "H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8", "H9", "H10")
	o.resp.push(item{e: Envelope{Frame: Frame{ID: "R1"}}, req: &request{}})
	got := strings.Join(takeAll(&o, &cfg), " ")
	if want := "H1 H2 H3 H4 H5 H6 H7 H8 H9 H10 L1 L2 R1"; got != want {
		t.Fatalf("order %q; want %q", got, want)
	}
}

// An idle outbox holds no queue memory.
func TestEmptyQueueHoldsNoChunk(t *testing.T) {
	var q fifo
	for i := range 3 * chunkLen {
		q.push(item{e: Envelope{Frame: Frame{ID: fmt.Sprint(i)}}})
	}
	for i := range 3 * chunkLen {
		if got := q.pop().e.Frame.ID; got != fmt.Sprint(i) {
			t.Fatalf("pop %d gave %s", i, got)
		}
	}
	if q.head != nil || q.tail != nil {
		t.Fatal("empty queue still holds a chunk")
	}
}

// Property: whatever the interleaving of pushes of both priorities,
// responses and takes, nothing is lost, each priority (and each request's
// stream) stays FIFO, responses never overtake a waiting push, and no more
// than MaxHighBeforeLow high frames go out in a row while a low frame waits.
func TestOutboxProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{MaxHighBeforeLow: rapid.IntRange(0, 5).Draw(t, "maxHighBeforeLow")}
		var o outbox
		var now lazyNow
		reqs := []*request{{}, {}}
		seq := map[string]int{}     // next sequence number per stream
		next := map[string]int{}    // next expected on take
		lowWaiting, highRun := 0, 0 // model
		pushed, taken := 0, 0
		take := func() {
			src := o.next(&cfg, &now)
			if src == fromNone {
				if o.high.len()+o.low.len()+o.resp.len() != 0 {
					t.Fatal("nothing taken while frames wait")
				}
				return
			}
			it := o.take(src, &cfg, &now)
			taken++
			stream, n := splitID(it.e.Frame.ID)
			if n != next[stream] {
				t.Fatalf("%s out of order: got #%d, want #%d", stream, n, next[stream])
			}
			next[stream]++
			switch stream {
			case "H":
				if lowWaiting > 0 {
					highRun++
					if cfg.MaxHighBeforeLow > 0 && highRun > cfg.MaxHighBeforeLow {
						t.Fatalf("%d high frames in a row while a low frame waits", highRun)
					}
				}
			case "L":
				lowWaiting--
				highRun = 0
			default:
				highRun = 0
				if o.high.len()+o.low.len() > 0 {
					t.Fatal("a response overtook a waiting push")
				}
			}
		}
		for range rapid.IntRange(0, 200).Draw(t, "steps") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				queueIDs(&o, push.High, fmt.Sprintf("H#%d", seq["H"]))
				seq["H"]++
				pushed++
			case 1:
				queueIDs(&o, push.Low, fmt.Sprintf("L#%d", seq["L"]))
				seq["L"]++
				lowWaiting++
				pushed++
			case 2:
				k := rapid.IntRange(0, 1).Draw(t, "request")
				name := fmt.Sprintf("R%d", k)
				o.resp.push(item{e: Envelope{Frame: Frame{ID: fmt.Sprintf("%s#%d", name, seq[name])}}, req: reqs[k]})
				seq[name]++
				pushed++
			default:
				take()
			}
		}
		for o.high.len()+o.low.len()+o.resp.len() > 0 {
			take()
		}
		if taken != pushed {
			t.Fatalf("took %d of %d frames", taken, pushed)
		}
	})
}

func splitID(id string) (string, int) {
	stream, num, _ := strings.Cut(id, "#")
	var n int
	fmt.Sscan(num, &n)
	return stream, n
}

func TestFairnessTimeSliceOnOutbox(t *testing.T) {
	var o outbox
	cfg := Config{FairnessSlice: 10 * time.Millisecond}
	queueIDs(&o, push.High, "H1", "H2", "H3")
	queueIDs(&o, push.Low, "L1")
	start := time.Now()
	now := lazyNow{t: start, set: true}
	var got []string
	for _, at := range []time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond, 15 * time.Millisecond} {
		now.t = start.Add(at)
		got = append(got, o.take(o.next(&cfg, &now), &cfg, &now).e.Frame.ID)
	}
	if g, want := strings.Join(got, " "), "H1 H2 L1 H3"; g != want {
		t.Fatalf("order %q; want %q", g, want)
	}
}
