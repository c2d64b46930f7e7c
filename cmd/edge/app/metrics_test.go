package app

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/internal/testcert"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden from a running node")

// goldenFile lists every pushfabric_* family a fresh node with TLS exposes: name,
// type, label names and help, then each pre-initialised series' labels
// (and a histogram's buckets); pushfabric_build_info's label values, which
// name the build, are written *.
const goldenFile = "testdata/metrics.golden"

// A fresh node's /metrics shows exactly the pushfabric_* families of
// testdata/metrics.golden: each name, type, help text, label name,
// pre-initialised label value and histogram bucket, beside the Go runtime
// and process collectors.
func TestMetricFamilies(t *testing.T) {
	mfs := scrapeNode(t)
	for _, std := range []string{"go_goroutines", "process_start_time_seconds"} {
		if mfs[std] == nil {
			t.Errorf("no %s: the standard collectors are missing", std)
		}
	}
	got := describe(mfs)
	if *update {
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("metric families differ from %s (go test -update rewrites it):\n%s", goldenFile, lineDiff(string(want), got))
	}
}

// scrapeNode runs a node on loopback ports with an embedded NATS server and
// TLS on every listener, the admin one too, and reads its /metrics once
// over HTTPS.
func scrapeNode(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	cfg := DefaultConfig()
	cfg.WSListen, cfg.TCPListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Bus.Embedded.Listen, cfg.Bus.Embedded.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Identity.Node = "n1"
	var ca *testcert.CA
	cfg.TLSCert, cfg.TLSKey, ca = testPair(t)
	cfg.AdminTLS = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, stop, err := Run(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	resp, err := httpsClient(ca).Get(fmt.Sprintf("https://%s/metrics", node.Addr("admin")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// describe writes the pushfabric_* families of mfs, sorted, one line per
// family and one per series.
func describe(mfs map[string]*dto.MetricFamily) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(mfs)) {
		if !strings.HasPrefix(name, "pushfabric_") {
			continue
		}
		mf := mfs[name]
		var series []string
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
				v := l.GetValue()
				if name == "pushfabric_build_info" {
					v = "*" // the build's own: version, revision, toolchain
				}
				pairs = append(pairs, l.GetName()+"="+v)
			}
			series = append(series, "  {"+strings.Join(pairs, ",")+"}"+buckets(m))
		}
		slices.Sort(series)
		fmt.Fprintf(&b, "%s %s [%s] %s\n", name, strings.ToLower(mf.GetType().String()),
			strings.Join(slices.Sorted(maps.Keys(labels)), ","), mf.GetHelp())
		for _, s := range series {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// buckets are a histogram's upper bounds, " le 1 2 …", or "".
func buckets(m *dto.Metric) string {
	h := m.GetHistogram()
	if h == nil {
		return ""
	}
	s := " le"
	for _, bk := range h.GetBucket() {
		s += fmt.Sprintf(" %g", bk.GetUpperBound())
	}
	return s
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// The writer's metrics, on a pedantic registry: pushes lost by reason,
// every reason from 0, and a letter written after Stop counted lost as
// shutdown.
func TestWriterMetricsByReason(t *testing.T) {
	w, err := dlq.NewWriter(push.Identity{Prefix: "push"}, dlq.DefaultWriterConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context(), natstest.Connect(t, natstest.Server(t))); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(writerCollector(w)); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for _, r := range dlq.LostReasons {
		if v, ok := got["pushfabric_pushes_lost_total{reason="+string(r)+"}"]; !ok || v != 0 {
			t.Errorf("pushes lost, reason %s: %v %v; want 0", r, v, ok)
		}
	}
	if _, ok := got["pushfabric_dead_letters_trimmed_total"]; !ok {
		t.Errorf("no trimmed counter in %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	w.Write(dlq.Letter{Session: "s1", Priority: "high", Reason: push.ReasonOffline})
	if v := gather(t, reg)["pushfabric_pushes_lost_total{reason=shutdown}"]; v != 1 {
		t.Errorf("pushes lost at shutdown: %v; want 1", v)
	}
}

// gather reads reg's counters and gauges as name{label=value…} → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return got
}
