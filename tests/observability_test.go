package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
	"go.yaml.in/yaml/v3"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/internal/testcert"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// scrape reads the node's /metrics.
func scrape(t testing.TB, n *edgeNode) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	return scrapeAddr(t, n.Addr("admin").String())
}

// scrapeAddr reads the /metrics of the admin listener at addr.
func scrapeAddr(t testing.TB, addr string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	return scrapeWith(t, http.DefaultClient, fmt.Sprintf("http://%s/metrics", addr))
}

// scrapeWith reads and parses the metrics at url with hc.
func scrapeWith(t testing.TB, hc *http.Client, url string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := hc.Get(url)
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
	return body, mfs
}

// value is the value of the metric family name with the given label pairs
// (name=value), counter, gauge or histogram count.
func value(t testing.TB, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range mf.Metric {
		if matches(m, labels) {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no %s with %v", name, labels)
	return 0
}

func matches(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		found := false
		for _, lp := range m.Label {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// After a scripted run — pushes of both priorities, dead letters, acks of
// every kind, a takeover — /metrics shows exactly what happened, with every
// label value present, and passes the Prometheus linter.
func TestMetricsAfterAScriptedRun(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")

	c := dial(t, n.ws(), "alpha", client.Options{})
	for i := range 5 {
		if ack, err := p.Push(timeout(t), "alpha", push.High, []byte("x"), producer.WithID(fmt.Sprint("h", i))); err != nil || ack.Status != "enqueued" {
			t.Fatalf("push: %+v %v", ack, err)
		}
		recv(t, c)
	}
	if ack, err := p.Push(timeout(t), "alpha", push.High, []byte("x"), producer.WithAck("written")); err != nil || ack.Status != "written" {
		t.Fatalf("push: %+v %v", ack, err)
	}
	recv(t, c)
	// One that is stale already when it arrives: dead at once, expired.
	if ack, err := p.Push(timeout(t), "alpha", push.Low, []byte("x"), producer.WithExpiry(time.Now().Add(-time.Second))); err != nil || ack.Status != "dead" || ack.Reason != "expired" {
		t.Fatalf("push: %+v %v", ack, err)
	}
	// Two invalid ones: dead at once.
	for _, m := range []*nats.Msg{{Subject: "push.alpha.urgent"}, {Subject: "push.alpha.high", Header: nats.Header{protocol.HeaderExpires: {"soon"}}}} {
		if ack := request(t, nc, m); ack.Status != "dead" {
			t.Fatalf("invalid push: %+v", ack)
		}
	}
	// A takeover: alpha connects again.
	dial(t, n.tcp(), "alpha", client.Options{})
	<-c.Done()
	waitFor(t, "the expired push dead-lettered and the old connection gone", func() bool {
		_, mfs := scrape(t, n)
		return value(t, mfs, "pushfabric_dead_letters_total", "reason=expired") == 1 &&
			value(t, mfs, "pushfabric_disconnects_total", "reason=replaced") == 1
	})

	body, mfs := scrape(t, n)
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"pushfabric_pushes_received_total", []string{"priority=high"}, 6},
		{"pushfabric_pushes_received_total", []string{"priority=low"}, 0}, // the stale one was never queued
		{"pushfabric_pushes_written_total", []string{"priority=high"}, 6},
		{"pushfabric_pushes_written_total", []string{"priority=low"}, 0},
		{"pushfabric_dead_letters_total", []string{"reason=expired"}, 1},
		{"pushfabric_dead_letters_total", []string{"reason=invalid"}, 2},
		{"pushfabric_dead_letters_total", []string{"reason=queue_full"}, 0},
		{"pushfabric_acks_total", []string{"status=enqueued"}, 5},
		{"pushfabric_acks_total", []string{"status=written"}, 1},
		{"pushfabric_acks_total", []string{"status=dead"}, 3},
		{"pushfabric_connects_total", nil, 2},
		{"pushfabric_sessions", nil, 1},
		{"pushfabric_takeovers_total", nil, 1},
		{"pushfabric_disconnects_total", []string{"reason=replaced"}, 1},
		{"pushfabric_disconnects_total", []string{"reason=shutdown"}, 0},
		{"pushfabric_rejections_total", []string{"reason=auth"}, 0},
		{"pushfabric_response_streams_total", []string{"outcome=completed"}, 0},
		{"pushfabric_delivery_latency_seconds", nil, 6},
		{"pushfabric_queue_wait_seconds", nil, 6},
		{"pushfabric_nats_slow_consumer_events_total", nil, 0},
		{"pushfabric_pushes_lost_total", nil, 0},
		{"pushfabric_ready", nil, 1},
	}
	for _, w := range want {
		if got := value(t, mfs, w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %v; want %v", w.name, w.labels, got, w.value)
		}
	}
	if bw := value(t, mfs, "pushfabric_bytes_written_total"); bw <= 0 {
		t.Errorf("bytes written %v", bw)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "pushfabric_") {
			t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
		}
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /readyz turns not-ready when NATS goes away and while the node drains,
// and ready again when NATS is back; /healthz stays up.
func TestReadiness(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Port = natstest.FreePort(t)
	s := natstest.StartWith(t, opts)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.Rate, cfg.Edge.Burst, cfg.Edge.DrainTimeout = 20, 1, 2*time.Second
	n := startEdge(t, cfg)
	admin := fmt.Sprintf("http://%s", n.Addr("admin"))
	ready := func() (int, string) { return getStatus(t, admin+"/readyz") }
	if code, body := ready(); code != 200 {
		t.Fatalf("/readyz %d %s; want 200", code, body)
	}

	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, "not ready without NATS", func() bool {
		code, body := ready()
		return code == 503 && strings.Contains(body, "NATS")
	})
	if code, _ := getStatus(t, admin+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d without NATS; want 200 (the process is alive)", code)
	}
	s = natstest.StartWith(t, opts)
	waitFor(t, "ready again", func() bool { code, _ := ready(); return code == 200 })

	// Drain: a client with pushes queued keeps the node draining a while.
	c := dial(t, n.tcp(), "slow", client.Options{})
	nc := natstest.Connect(t, s)
	for i := range 30 {
		_ = nc.PublishMsg(pushMsg("slow", "low", fmt.Sprint(i), ""))
	}
	_ = nc.Flush()
	recv(t, c)
	stopped := make(chan struct{})
	go func() { n.shutdown(t); close(stopped) }()
	waitFor(t, "not ready while draining", func() bool {
		code, body := ready()
		return code == 503 && strings.Contains(body, "draining")
	})
	<-stopped
}

// A trace started by the producer client continues at the edge: same trace
// id, the delivery span a child of the producer's; a dead letter keeps the
// producer's traceparent.
func TestTraceFromProducerToEdge(t *testing.T) {
	exp, tp, s, n := tracedEdge(t)
	nc := natstest.Connect(t, s)
	p, err := producer.New(nc, producer.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(timeout(t)) })
	c := dial(t, n.tcp(), "traced", client.Options{})

	if ack, err := p.Push(timeout(t), "traced", push.High, []byte("x"), producer.WithID("t1")); err != nil || ack.Status != "enqueued" {
		t.Fatalf("push: %+v %v", ack, err)
	}
	recv(t, c)
	// A stale one: it dies as it reaches the edge, traced there.
	if ack, err := p.Push(timeout(t), "traced", push.Low, []byte("x"), producer.WithID("t2"), producer.WithExpiry(time.Now().Add(-time.Second))); err != nil || ack.Status != "dead" {
		t.Fatalf("push: %+v %v", ack, err)
	}
	var pushes, deliveries []tracetest.SpanStub
	waitFor(t, "two delivery spans ended", func() bool {
		spans := spansByName(exp)
		pushes, deliveries = spans["pushfabric.push"], spans["pushfabric.deliver"]
		return len(deliveries) == 2
	})
	byID := func(list []tracetest.SpanStub, id string) tracetest.SpanStub {
		for _, sp := range list {
			for _, a := range sp.Attributes {
				if a.Key == "pushfabric.push_id" && a.Value.AsString() == id {
					return sp
				}
			}
		}
		t.Fatalf("no span for push %s", id)
		return tracetest.SpanStub{}
	}
	for _, id := range []string{"t1", "t2"} {
		prod, del := byID(pushes, id), byID(deliveries, id)
		if del.SpanContext.TraceID() != prod.SpanContext.TraceID() || del.Parent.SpanID() != prod.SpanContext.SpanID() {
			t.Fatalf("push %s: delivery span in trace %s under %s; want trace %s under %s", id,
				del.SpanContext.TraceID(), del.Parent.SpanID(), prod.SpanContext.TraceID(), prod.SpanContext.SpanID())
		}
	}
	if dead := byID(deliveries, "t2"); dead.Status.Description != "dead-lettered: expired" {
		t.Fatalf("the stale push's span status %q", dead.Status.Description)
	}
	n.shutdown(t) // flush the dead letters
	prod := byID(pushes, "t2")
	wantParent := fmt.Sprintf("00-%s-%s-01", prod.SpanContext.TraceID(), prod.SpanContext.SpanID())
	dls := deadLetters(t, s)
	if len(dls) != 1 || dls[0].Header.Get("traceparent") != wantParent {
		t.Fatalf("dead letters %v; want one with traceparent %s", dls, wantParent)
	}
}

// spansByName is the spans exp holds, ended so far, by name.
func spansByName(exp *tracetest.InMemoryExporter) map[string][]tracetest.SpanStub {
	by := map[string][]tracetest.SpanStub{}
	for _, sp := range exp.GetSpans() {
		by[sp.Name] = append(by[sp.Name], sp)
	}
	return by
}

var metricName = regexp.MustCompile(`pushfabric_[a-z_]+`)

// The Grafana dashboard and the Prometheus files parse, and every metric
// they name is one a node serves; docs/operations.md explains every metric
// a node serves and every alert. The node serves TLS, so that its
// certificate's metrics are among them.
func TestDashboardAndAlertsNameRealMetrics(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	_, pair := testcert.Loopback(t)
	cfg.TLSCert, cfg.TLSKey = pair.Write(t, t.TempDir())
	n := startEdge(t, cfg)
	_, mfs := scrape(t, n)
	served := map[string]bool{}
	for name, mf := range mfs {
		served[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[name+suffix] = true
			}
		}
	}
	check := func(file, text string) {
		t.Helper()
		names := metricName.FindAllString(text, -1)
		if len(names) == 0 {
			t.Fatalf("%s names no pushfabric metric", file)
		}
		sort.Strings(names)
		for _, name := range names {
			if !served[name] {
				t.Errorf("%s uses %s, which no node serves", file, name)
			}
		}
	}

	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw, err := os.ReadFile("../deployments/grafana/pushfabric.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if len(dash.Panels) < 8 {
		t.Fatalf("dashboard has %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("dashboard panel "+p.Title, tg.Expr)
		}
	}

	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	raw, err = os.ReadFile("../deployments/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks an alert name, expression, severity or summary", r)
			}
			if !strings.Contains(r.Expr, "up{") {
				check("alert "+r.Alert, r.Expr)
			}
		}
	}
	if alerts < 5 {
		t.Fatalf("%d alerts", alerts)
	}
	raw, err = os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	ops := string(raw)
	for name := range mfs {
		if short, ok := strings.CutPrefix(name, "pushfabric_"); ok && !strings.Contains(ops, "| `"+short) {
			t.Errorf("docs/operations.md has no row for %s", name)
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if !strings.Contains(ops, "**"+r.Alert+"**") {
				t.Errorf("docs/operations.md does not say what to do when %s fires", r.Alert)
			}
		}
	}
	check("docs/operations.md", ops)
	var prom map[string]any
	raw, err = os.ReadFile("../deployments/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &prom); err != nil || prom["scrape_configs"] == nil {
		t.Fatalf("prometheus.yml: %v %v", err, prom)
	}
}

// pushctl top shows a node's figures from its /metrics, the node named by
// its name and its admin URL: the live table and the totals since start.
func TestPushctlTop(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	c := dial(t, n.tcp(), "watched", client.Options{})
	p := newProducer(t, natstest.Connect(t, s), "")
	for i := range 3 {
		if _, err := p.Push(timeout(t), "watched", push.High, fmt.Appendf(nil, "p%d", i)); err != nil {
			t.Fatal(err)
		}
		recv(t, c)
	}
	if ack, err := p.Push(timeout(t), "watched", push.Low, []byte("late"), producer.WithExpiry(time.Now().Add(-time.Second)), producer.WithAck(protocol.AckWritten)); err != nil || ack.Status != protocol.StatusDead {
		t.Fatalf("expired push: %+v, %v", ack, err)
	}
	out, err := exec.Command(binary(t, "pushctl"), "top", "--once", "--interval", "200ms",
		"--admin", fmt.Sprintf("http://%s", n.Addr("admin"))).CombinedOutput()
	if err != nil {
		t.Fatalf("pushctl top: %v\n%s", err, out)
	}
	var rows [][]string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "n1" { // the node by its name
			rows = append(rows, f)
		}
	}
	// node ready sessions ... admin, and node received written dead-lettered (by reason) connects takeovers
	if len(rows) != 2 || len(rows[0]) != 12 || rows[0][1] != "yes" || rows[0][2] != "1" || rows[0][11] != "http://"+n.Addr("admin").String() ||
		strings.Join(rows[1][1:], " ") != "3 3 1 (expired 1) 1 0" {
		t.Fatalf("pushctl top printed:\n%s\nwant the node ready with 1 session; 3 received (the stale one never queued), 3 written, 1 expired, 1 connect", out)
	}
}

// A traced group push gets one fan-out span on each node holding members,
// child of the producer's, naming the group and the members it was queued
// for: not one span per member.
func TestTraceOfAGroupPush(t *testing.T) {
	exp, tp, s, n := tracedEdge(t)
	p, err := producer.New(natstest.Connect(t, s), producer.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(timeout(t)) })
	a, b := dialGroups(t, n.tcp(), "tab1", "team"), dialGroups(t, n.tcp(), "tab2", "team")
	if ack, err := p.PushGroup(timeout(t), "team", push.High, []byte("x"), producer.WithID("g1")); err != nil || ack.Members != 2 {
		t.Fatalf("group push: %+v %v", ack, err)
	}
	recv(t, a)
	recv(t, b)
	var prod, fan []tracetest.SpanStub
	waitFor(t, "the fan-out span ended", func() bool {
		spans := spansByName(exp)
		prod, fan = spans["pushfabric.push"], spans["pushfabric.fanout"]
		return len(fan) > 0 && len(prod) > 0
	})
	if len(fan) != 1 || fan[0].Parent.SpanID() != prod[0].SpanContext.SpanID() || fan[0].SpanContext.TraceID() != prod[0].SpanContext.TraceID() {
		t.Fatalf("%d fan-out spans; want one, child of the producer's", len(fan))
	}
	attrs := map[string]string{}
	for _, kv := range fan[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["pushfabric.group"] != "team" || attrs["pushfabric.members"] != "2" || attrs["pushfabric.push_id"] != "g1" {
		t.Fatalf("fan-out span attributes %v; want group team, 2 members, push g1", attrs)
	}
}

// A producer with no TracerProvider traces with OpenTelemetry's global
// one once the program sets it, even after New: Publish's fast path too,
// its span naming the push, the edge's delivery span its child.
func TestPublishTracesWithTheGlobalProvider(t *testing.T) {
	exp, tp, s, n := tracedEdge(t)
	p := newProducer(t, natstest.Connect(t, s), "")
	c := dial(t, n.tcp(), "traced", client.Options{})
	if err := p.Publish("traced", push.High, []byte("untraced"), producer.WithID("before")); err != nil {
		t.Fatal(err)
	}
	recv(t, c)
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	for i := range 3 {
		if err := p.Publish("traced", push.High, []byte("x"), producer.WithID(fmt.Sprintf("g%d", i))); err != nil {
			t.Fatal(err)
		}
		recv(t, c)
	}
	var pushes, deliveries []tracetest.SpanStub
	waitFor(t, "three delivery spans", func() bool {
		spans := spansByName(exp)
		pushes, deliveries = spans["pushfabric.push"], spans["pushfabric.deliver"]
		return len(deliveries) >= 3 && len(pushes) == 3
	})
	for i, prod := range pushes {
		attrs := map[string]string{}
		for _, a := range prod.Attributes {
			attrs[string(a.Key)] = a.Value.AsString()
		}
		if want := fmt.Sprintf("g%d", i); attrs["pushfabric.push_id"] != want || attrs["pushfabric.session"] != "traced" ||
			attrs["messaging.destination.name"] != "push.traced.high" {
			t.Errorf("span %d: %v; want push %s to traced on push.traced.high", i, attrs, want)
		}
		found := false
		for _, del := range deliveries {
			found = found || del.Parent.SpanID() == prod.SpanContext.SpanID()
		}
		if !found {
			t.Errorf("no delivery span under the producer's span of push g%d", i)
		}
	}
}

// tracedEdge is an edge node n1 on a new NATS server s, tracing with tp,
// whose spans exp keeps.
func tracedEdge(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider, *server.Server, *edgeNode) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(timeout(t)) })
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.TracerProvider = tp
	return exp, tp, s, startEdge(t, cfg)
}
