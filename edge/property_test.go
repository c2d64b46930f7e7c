package edge_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Property, over a real socket: for any mix of pushes of both priorities
// queued at once and streamed responses, the client receives every frame;
// pushes come exactly in the order the fairness rule gives (so FIFO per
// priority, and never more than MaxHighBeforeLow highs in a row while a low
// waits), all of them before any response; each stream arrives complete and
// in order, ended once; command end fires exactly once per request.
//
// One connection serves every case: a gate holds its writer while a case
// queues its pushes, so the order the writer then chooses is deterministic.
func TestActorProperties(t *testing.T) {
	const maxHighBeforeLow = 3
	g := newGate()
	var endsMu sync.Mutex
	ends := map[string]int{}
	ended := make(chan string, 64)
	cfg := edge.DefaultConfig()
	cfg.MaxHighBeforeLow = maxHighBeforeLow
	cfg.Flushers = 2 // the gate holds one; handlers' streams and acks need none
	// One connection sends every case's requests, as fast as the cases
	// run: the per-connection limits (TestRequestRate and the others hold
	// them) would answer a fast machine's rate_limited.
	cfg.RequestRate, cfg.ClientFrameRate, cfg.ClientByteRate = 0, 0, 0
	n := startNode(t, cfg, edge.Options{
		Handlers: map[string]edge.Handler{"stream": func(ctx context.Context, r *edge.Request) (edge.Response, error) {
			k, _ := strconv.Atoi(string(r.Payload))
			return edge.Stream(count(k)), nil
		}},
		Hooks: edge.Hooks{
			BeforeSend: g.beforeSend,
			OnCommandEnd: func(_ *edge.Conn, r *edge.Request, _ error) {
				endsMu.Lock()
				ends[r.ID]++
				endsMu.Unlock()
				ended <- r.ID
			},
		},
	})
	raw := rawTCP(t, n, "prop")
	h := n.handle(t, "prop")
	reqSeq := 0
	rapid.Check(t, func(rt *rapid.T) {
		prios := rapid.SliceOfN(rapid.IntRange(0, 1), 0, 40).Draw(rt, "priorities")
		streams := rapid.SliceOfN(rapid.IntRange(0, 40), 0, 3).Draw(rt, "streams")

		release := g.hold(t, h)
		var highs, lows []string
		for i, p := range prios {
			id := fmt.Sprintf("p%d", i)
			if p == 0 {
				highs = append(highs, id)
			} else {
				lows = append(lows, id)
			}
			if err := h.TryPush(push.Priority(p), pushOf(id, "")); err != nil {
				rt.Fatalf("TryPush: %v", err)
			}
		}
		want := append([]string{"gate"}, fairOrder(highs, lows, maxHighBeforeLow)...)
		reqLen := map[string]int{}
		for _, k := range streams {
			reqSeq++
			id := strconv.Itoa(reqSeq)
			reqLen[id] = k
			raw.send(t, wire.Frame{Type: wire.TypeRequest, ID: id, Name: "stream", Payload: []byte(strconv.Itoa(k))})
		}
		release()

		for i, w := range want {
			f := raw.next(t)
			if f.Type != wire.TypePush || f.ID != w {
				rt.Fatalf("frame %d: %v %s; want push %s (order %v)", i, f.Type, f.ID, w, want)
			}
		}
		next := map[string]int{}
		for open := len(reqLen); open > 0; {
			f := raw.next(t)
			k, ok := reqLen[f.ID]
			switch {
			case !ok:
				rt.Fatalf("unexpected %v frame %q", f.Type, f.ID)
			case f.Type == wire.TypeResponse && string(f.Payload) == strconv.Itoa(next[f.ID]):
				next[f.ID]++
			case f.Type == wire.TypeEnd && next[f.ID] == k:
				delete(reqLen, f.ID)
				open--
			default:
				rt.Fatalf("request %s: %v %q after %d of %d frames", f.ID, f.Type, f.Payload, next[f.ID], k)
			}
		}
		for range streams {
			<-ended
		}
	})
	endsMu.Lock()
	defer endsMu.Unlock()
	if len(ends) != reqSeq {
		t.Fatalf("command end fired for %d of %d requests", len(ends), reqSeq)
	}
	for id, k := range ends {
		if k != 1 {
			t.Fatalf("command end fired %d times for request %s", k, id)
		}
	}
}

// fairOrder is the reference model of the fairness rule.
func fairOrder(highs, lows []string, max int) []string {
	var out []string
	run := 0
	for len(highs)+len(lows) > 0 {
		if len(highs) > 0 && (len(lows) == 0 || max == 0 || run < max) {
			out, highs, run = append(out, highs[0]), highs[1:], run+1
		} else {
			out, lows, run = append(out, lows[0]), lows[1:], 0
		}
	}
	return out
}
