package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latency is a latency distribution in microseconds.
type latency struct {
	P50  int64 `json:"p50_us"`
	P90  int64 `json:"p90_us"`
	P99  int64 `json:"p99_us"`
	P999 int64 `json:"p99_9_us"`
	Max  int64 `json:"max_us"`
}

func latencyOf(h *hdrhistogram.Histogram) latency {
	return latency{P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max()}
}

// phaseResult is one measured run: the raw NATS baseline or the fabric.
type phaseResult struct {
	Name      string            `json:"name"`
	Sent      uint64            `json:"sent"`
	Published uint64            `json:"published,omitempty"` // fan-out: the pushes published (Sent is the copies due)
	Delivered uint64            `json:"delivered"`
	Dead      map[string]uint64 `json:"dead_letters"`
	Missing   int64             `json:"missing"` // sent − delivered − dead: lost, or still on the way when the bench gave up
	// Fan-out: group pushes a node dead-lettered for the group (its fan-out
	// backlog full), and the member copies they stand for (one letter for
	// every member on that node, counted dead in Missing).
	GroupOverflows      uint64   `json:"group_overflows,omitempty"`
	GroupOverflowCopies uint64   `json:"group_overflow_copies,omitempty"`
	DroppedByNATS       uint64   `json:"dropped_by_nats"`
	SlowConsumerEvents  float64  `json:"edge_slow_consumer_events"`
	EdgeDropped         float64  `json:"edge_dropped_by_nats"`      // messages NATS dropped before the edge saw them
	Lost                float64  `json:"lost"`                      // counted lost by the edge: its dead letters could not be written
	DeadLettersWritten  uint64   `json:"dead_letters_written"`      // by the edge, acknowledged by the stream
	DeadLetterSeconds   float64  `json:"dead_letter_write_seconds"` // first send to the last dead letter written
	Seconds             float64  `json:"seconds"`                   // first send to last delivery
	PushesPerSecond     float64  `json:"delivered_per_second"`
	Latency             latency  `json:"latency"`
	AckLatency          *latency `json:"ack_latency,omitempty"` // producer client Push: from the call to its ack
	ConnectSeconds      float64  `json:"connect_seconds"`
	EdgeCPUSeconds      float64  `json:"edge_cpu_seconds"`
	NATSCPUSeconds      float64  `json:"nats_cpu_seconds"`
	ClientsCPUSeconds   float64  `json:"clients_cpu_seconds"`
	ProducerCPUSeconds  float64  `json:"producers_cpu_seconds"` // pushbench's own process
	EdgeRSSBytes        float64  `json:"edge_rss_bytes"`
	BytesPerSession     float64  `json:"edge_rss_bytes_per_session"`
}

func (r *phaseResult) deadTotal() uint64 {
	var t uint64
	for _, v := range r.Dead {
		t += v
	}
	return t
}

// loadOutput is what pushbench load prints.
type loadOutput struct {
	Spec   string       `json:"spec"`
	Raw    *phaseResult `json:"raw_nats,omitempty"`
	Fabric *phaseResult `json:"pushfabric"`
	// Receipts is the phase pushing with Push-Ack: received (--ack received).
	Receipts *phaseResult `json:"receipts,omitempty"`
	// Ratios of the fabric's figures to the baseline's.
	ThroughputRatio float64 `json:"throughput_ratio,omitempty"`
	// Edge CPU per delivered push over NATS server CPU per message, both
	// in the fabric run.
	EdgeCPUPerPushOverNATS float64 `json:"edge_cpu_per_push_over_nats_cpu_per_message,omitempty"`
}

func (o *loadOutput) finish() {
	f := o.Fabric
	if o.Raw != nil && o.Raw.PushesPerSecond > 0 {
		o.ThroughputRatio = f.PushesPerSecond / o.Raw.PushesPerSecond
	}
	if f.Delivered > 0 && f.Sent > 0 && f.NATSCPUSeconds > 0 {
		o.EdgeCPUPerPushOverNATS = (f.EdgeCPUSeconds / float64(f.Delivered)) / (f.NATSCPUSeconds / float64(f.Sent))
	}
}

func (o *loadOutput) print(w io.Writer) {
	fmt.Fprintf(w, "\npushbench load: %s\n\n", o.Spec)
	t := o.newTable(w)
	o.speedRows(t)
	o.countRows(t)
	o.costRows(t)
	t.tw.Flush()
	o.printNotes(w, t.cols)
}

// loadTable is the table pushbench load prints: a column per phase and,
// beside the baseline, one of ratios.
type loadTable struct {
	tw     *tabwriter.Writer
	cols   []*phaseResult
	ratios bool
}

// newTable starts the table with its header.
func (o *loadOutput) newTable(w io.Writer) *loadTable {
	t := &loadTable{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)}
	header := "\t"
	if o.Raw != nil {
		t.cols, t.ratios, header = append(t.cols, o.Raw), true, header+"raw NATS\t"
	}
	t.cols, header = append(t.cols, o.Fabric), header+"pushfabric\t"
	if o.Receipts != nil {
		t.cols, header = append(t.cols, o.Receipts), header+"Push-Ack: received\t"
	}
	if t.ratios {
		header += "ratio\t"
	}
	fmt.Fprintln(t.tw, header)
	return t
}

// row writes one figure of every phase, and the ratio if there is a
// baseline.
func (t *loadTable) row(label string, f func(*phaseResult) string, ratio string) {
	fmt.Fprint(t.tw, label+"\t")
	for _, c := range t.cols {
		fmt.Fprint(t.tw, f(c)+"\t")
	}
	if t.ratios {
		fmt.Fprint(t.tw, ratio+"\t")
	}
	fmt.Fprintln(t.tw)
}

// ratioOf is a / b, or nothing when b is 0.
func ratioOf(a, b float64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", a/b)
}

// speedRows are the delivered rate and the latency quantiles.
func (o *loadOutput) speedRows(t *loadTable) {
	t.row("delivered pushes/s", func(r *phaseResult) string { return group(r.PushesPerSecond) }, fmt.Sprintf("%.2f", o.ThroughputRatio))
	for _, q := range []struct {
		name string
		f    func(latency) int64
	}{{"latency p50", func(l latency) int64 { return l.P50 }}, {"p90", func(l latency) int64 { return l.P90 }},
		{"p99", func(l latency) int64 { return l.P99 }}, {"p99.9", func(l latency) int64 { return l.P999 }},
		{"max", func(l latency) int64 { return l.Max }}} {
		r := ""
		if o.Raw != nil {
			r = ratioOf(float64(q.f(o.Fabric.Latency)), float64(q.f(o.Raw.Latency)))
		}
		t.row(q.name, func(p *phaseResult) string { return micros(q.f(p.Latency)) }, r)
	}
	if o.Fabric.AckLatency != nil || o.Receipts != nil {
		ack := func(f func(latency) int64) func(*phaseResult) string {
			return func(p *phaseResult) string { return dash(p.AckLatency != nil, micros(f(derefLatency(p.AckLatency)))) }
		}
		t.row("ack wait p50", ack(func(l latency) int64 { return l.P50 }), "")
		t.row("ack wait p99", ack(func(l latency) int64 { return l.P99 }), "")
	}
}

func derefLatency(l *latency) latency {
	if l == nil {
		return latency{}
	}
	return *l
}

// countRows account for the pushes: sent, delivered, dead, missing.
func (o *loadOutput) countRows(t *loadTable) {
	if o.Fabric != nil && o.Fabric.Published > 0 {
		t.row("published (fan-out)", func(r *phaseResult) string { return group(float64(r.Published)) }, "")
	}
	t.row("sent", func(r *phaseResult) string { return group(float64(r.Sent)) }, "")
	t.row("delivered", func(r *phaseResult) string { return group(float64(r.Delivered)) }, "")
	t.row("dead-lettered", func(r *phaseResult) string { return group(float64(r.deadTotal())) }, "")
	if o.Fabric != nil && o.Fabric.GroupOverflows > 0 {
		t.row("group letters (fan-out full)", func(r *phaseResult) string {
			return group(float64(r.GroupOverflows)) + " = " + group(float64(r.GroupOverflowCopies)) + " copies"
		}, "")
	}
	t.row("missing", func(r *phaseResult) string { return group(float64(r.Missing)) }, "")
	t.row("dead letters written/s", func(r *phaseResult) string {
		return dash(r.DeadLetterSeconds > 0, group(float64(r.DeadLettersWritten)/r.DeadLetterSeconds))
	}, "")
}

// costRows are the CPU each process spent and the edge's memory.
func (o *loadOutput) costRows(t *loadTable) {
	t.row("NATS CPU s", func(r *phaseResult) string { return fmt.Sprintf("%.2f", r.NATSCPUSeconds) }, "")
	t.row("NATS CPU µs/msg", func(r *phaseResult) string { return perMsg(r.NATSCPUSeconds, r.Sent) }, "")
	t.row("edge CPU s", func(r *phaseResult) string { return dash(r.Name != "raw NATS", fmt.Sprintf("%.2f", r.EdgeCPUSeconds)) }, "")
	t.row("edge CPU µs/push", func(r *phaseResult) string {
		return dash(r.Name != "raw NATS", perMsg(r.EdgeCPUSeconds, r.Delivered))
	}, "")
	t.row("clients CPU s", func(r *phaseResult) string { return fmt.Sprintf("%.2f", r.ClientsCPUSeconds) }, "")
	t.row("producers CPU s", func(r *phaseResult) string { return fmt.Sprintf("%.2f", r.ProducerCPUSeconds) }, "")
	t.row("edge RSS", func(r *phaseResult) string { return dash(r.EdgeRSSBytes > 0, mib(r.EdgeRSSBytes)) }, "")
	t.row("edge RSS per session", func(r *phaseResult) string {
		return dash(r.BytesPerSession > 0, group(r.BytesPerSession)+" B")
	}, "")
}

// printNotes writes what follows the table: the fabric's dead letters by
// reason, the CPU ratio, and a line for each phase that lost track of
// pushes.
func (o *loadOutput) printNotes(w io.Writer, cols []*phaseResult) {
	for _, c := range cols {
		if c == o.Raw || len(c.Dead) == 0 {
			continue
		}
		reasons := make([]string, 0, len(c.Dead))
		for k := range c.Dead {
			reasons = append(reasons, k)
		}
		sort.Strings(reasons)
		var parts []string
		for _, k := range reasons {
			parts = append(parts, fmt.Sprintf("%s %s", k, group(float64(c.Dead[k]))))
		}
		fmt.Fprintf(w, "\n%s: dead letters by reason: %s\n", c.Name, strings.Join(parts, ", "))
	}
	if o.EdgeCPUPerPushOverNATS > 0 {
		fmt.Fprintf(w, "edge CPU per push / NATS CPU per message (same run): %.2f\n", o.EdgeCPUPerPushOverNATS)
	}
	for _, c := range cols {
		if c.Missing != 0 || c.DroppedByNATS > 0 || c.SlowConsumerEvents > 0 || c.Lost > 0 {
			fmt.Fprintf(w, "%s: %d missing (lost, or not there when the bench stopped waiting), %d dropped by NATS, %.0f slow-consumer events on the edge (%.0f pushes dropped), %.0f counted lost by the edge\n",
				c.Name, c.Missing, c.DroppedByNATS, c.SlowConsumerEvents, c.EdgeDropped, c.Lost)
		}
	}
}

func printJSON(v any) int {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail("json", err)
	}
	return 0
}

func dash(ok bool, s string) string {
	if !ok {
		return "-"
	}
	return s
}

func perMsg(seconds float64, n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", seconds*1e6/float64(n))
}

func micros(us int64) string {
	switch {
	case us >= 10_000:
		return fmt.Sprintf("%.1f ms", float64(us)/1000)
	case us >= 1000:
		return fmt.Sprintf("%.2f ms", float64(us)/1000)
	}
	return fmt.Sprintf("%d µs", us)
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// group formats a number with thousands separators.
func group(v float64) string {
	neg := v < 0
	s := fmt.Sprintf("%.0f", max(v, -v))
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
