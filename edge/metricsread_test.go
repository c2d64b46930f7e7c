package edge_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/edge"
)

// withMetrics gives o a fresh set of edge metrics and returns their
// registry.
func withMetrics(t testing.TB, o *edge.Options) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := edge.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	o.Metrics = m
	return reg
}

// counter is the value of the counter name with label=value; it fails the
// test if there is no such series (every label value is pre-initialised).
func counter(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}
