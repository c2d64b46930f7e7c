package edge_test

import (
	"testing"

	"github.com/pushfabric/pushfabric/edge"
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
