package edge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// withMetrics gives o a fresh set of edge metrics and returns them.
func withMetrics(t testing.TB, o *edge.Options) *edge.Metrics {
	t.Helper()
	m := edge.NewMetrics()
	o.Metrics = m
	return m
}

// counter is the count that the node's metric name exposes with
// label=value, read from m's Stats; it fails the test if there is no such
// series (every label value is present from the start).
func counter(t testing.TB, m *edge.Metrics, name, label, value string) float64 {
	t.Helper()
	st := m.Stats()
	byLabel := map[string]map[string]uint64{
		"pushfabric_rejections_total/reason":             st.Rejections,
		"pushfabric_response_streams_total/outcome":      st.Streams,
		"pushfabric_connection_panics_total/goroutine":   st.Panics,
		"pushfabric_connection_pushes_lost_total/reason": st.Lost,
	}
	if n, ok := byLabel[name+"/"+label][value]; ok {
		return float64(n)
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// A server given no Metrics counts in its own, and Stats shows what
// happened: the session, pushes received and written by priority, bytes,
// each push's queue wait and each write's batch, and the disconnect.
func TestServerStats(t *testing.T) {
	n := startNode(t, edge.DefaultConfig(), edge.Options{})
	c := dial(t, n.tcp, "s1", client.Options{})
	h := n.handle(t, "s1")
	for i, p := range []push.Priority{push.High, push.Low, push.High} {
		if err := h.TryPush(p, pushOf(fmt.Sprint("p", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		recv(t, c)
	}
	// Each count is made on its own (Stats' doc): wait until all three
	// pushes are in every one that counts them, then check the values.
	st := waitStats(t, n.srv, "three pushes counted written", func(s edge.Stats) bool {
		return s.QueueWait.Count == 3 && s.Written[0]+s.Written[1] == 3 && s.BatchSize.Sum == 3
	})
	if st.Received != [2]uint64{2, 1} || st.Written != [2]uint64{2, 1} || st.Sessions != 1 || st.Connects != 1 ||
		st.BytesWritten == 0 || st.BatchSize.Count == 0 || st.BatchSize.Sum != 3 {
		t.Fatalf("stats %+v; want 2 high and 1 low received and written in batches of 3 pushes, 1 session", st)
	}
	_ = c.Close()
	st = waitStats(t, n.srv, "the session ended", func(s edge.Stats) bool { return s.Sessions == 0 })
	if st.Disconnects[wire.CloseNormal] != 1 || len(st.Disconnects) != len(wire.CloseReasons) || st.Takeovers != 0 {
		t.Fatalf("disconnects %v, takeovers %d; want one normal of every reason, none taken over", st.Disconnects, st.Takeovers)
	}
}

// waitStats waits until srv's Stats satisfy cond, and returns them.
func waitStats(t *testing.T, srv *edge.Server, what string, cond func(edge.Stats) bool) edge.Stats {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for st := srv.Stats(); ; st = srv.Stats() {
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
