package tests

import (
	"runtime"
	"strconv"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// buildLabels returns the labels of the one pushfabric_build_info series
// and checks that its value is 1.
func buildLabels(t *testing.T, mfs map[string]*dto.MetricFamily) map[string]string {
	t.Helper()
	mf := mfs["pushfabric_build_info"]
	if mf == nil || mf.GetType() != dto.MetricType_GAUGE || len(mf.Metric) != 1 {
		t.Fatalf("pushfabric_build_info: %v; want one gauge series", mf)
	}
	m := mf.Metric[0]
	if v := m.GetGauge().GetValue(); v != 1 {
		t.Errorf("pushfabric_build_info is %v; want 1", v)
	}
	labels := map[string]string{}
	for _, lp := range m.Label {
		labels[lp.GetName()] = lp.GetValue()
	}
	return labels
}

// An edge node serves pushfabric_build_info, 1, labelled with the build
// that runs it.
func TestBuildInfoMetric(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	_, mfs := scrape(t, n)
	b := version.Current()
	want := map[string]string{"version": b.Version, "revision": b.Revision,
		"modified": strconv.FormatBool(b.Modified), "go_version": runtime.Version()}
	got := buildLabels(t, mfs)
	if len(got) != len(want) {
		t.Errorf("labels %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s=%q; want %q (all: %v)", k, got[k], v, got)
		}
	}
}

// The edge binary's "edge started" line names the version its
// pushfabric_build_info says, built by the toolchain that built the test.
func TestEdgeStartedSaysItsVersion(t *testing.T) {
	s := natstest.Server(t)
	p := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--ws-listen", "", "--tcp-listen", "127.0.0.1:0")
	_, mfs := scrapeAddr(t, p.addr("admin"))
	got := buildLabels(t, mfs)
	logged, _ := p.started["version"].(string)
	if logged == "" || logged != got["version"] || got["go_version"] != runtime.Version() {
		t.Errorf("edge started with version %q; metric labels %v: want the same version, go_version %s", logged, got, runtime.Version())
	}
	if _, err := p.stop(t); err != nil {
		t.Fatalf("edge exited with %v", err)
	}
}
