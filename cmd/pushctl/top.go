package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
)

// topCmd is pushctl top.
type topCmd struct {
	Admin    string        `default:"http://127.0.0.1:9090" placeholder:"URLS" help:"Admin listener URLs of the edge nodes, comma-separated."`
	Interval time.Duration `default:"2s" help:"How often to refresh (rates are over this interval)."`
	Once     bool          `help:"Print one view (two scrapes, interval apart) and exit: 0 when every node answered, 1 when one is DOWN."`
}

// Help is shown under the command's usage.
func (topCmd) Help() string {
	return "A live view of edge nodes, read from their admin listeners' /metrics: readiness, sessions,\npushes in and out per second, dead letters per second by reason, delivery latency, and the\ncounters that must stay at zero."
}

// Validate refuses an interval that is not positive.
func (c *topCmd) Validate() error {
	if c.Interval <= 0 {
		return fmt.Errorf("--interval %s: want more than 0", c.Interval)
	}
	return nil
}

func (c *topCmd) run() int {
	admins, interval, once := c.Admin, c.Interval, c.Once
	ctx, cancel := signalContext()
	defer cancel()
	nodes := strings.Split(admins, ",")
	prev := scrapeAll(ctx, nodes)
	tty := isTerminal(os.Stdout)
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(interval):
		}
		cur := scrapeAll(ctx, nodes)
		if tty && !once {
			fmt.Print("\033[H\033[2J")
		}
		printTop(os.Stdout, nodes, prev, cur, interval)
		if once {
			return downExit(cur)
		}
		prev = cur
	}
}

// downExit is top --once's exit status: 1 when a node could not be
// scraped (it is DOWN in the view), else 0.
func downExit(cur []sample) int {
	for _, c := range cur {
		if c.err != nil {
			return 1
		}
	}
	return 0
}

// sample is one scrape of one node.
type sample struct {
	mfs map[string]*dto.MetricFamily
	err error
}

// name is the node's name (pushfabric_node_info), or "?" when it is DOWN
// or does not say.
func (s sample) name() string {
	if names := cli.LabelValues(s.mfs, "pushfabric_node_info", "node"); len(names) == 1 {
		return names[0]
	}
	return "?"
}

func scrapeAll(ctx context.Context, nodes []string) []sample {
	out := make([]sample, len(nodes))
	for i, n := range nodes {
		out[i].mfs, out[i].err = cli.ScrapeMetrics(ctx, strings.TrimRight(n, "/")+"/metrics")
	}
	return out
}

func printTop(w io.Writer, nodes []string, prev, cur []sample, interval time.Duration) {
	fmt.Fprintf(w, "pushfabric  %s  (rates over %s)\n\n", time.Now().Format("15:04:05"), interval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tready\tsessions\tin/s\tout/s\tdead/s\tp50 ms\tp99 ms\tlost\tslow-cons\treconnects\tadmin\t")
	dead := map[string]float64{}
	var down []string
	for i, node := range nodes {
		c, p := cur[i], prev[i]
		if c.err != nil {
			fmt.Fprintf(tw, "?\tDOWN\t\t\t\t\t\t\t\t\t\t%s\t\n", node)
			down = append(down, c.err.Error())
			continue
		}
		rate := func(name string) float64 {
			return perSecond(cli.Sum(c.mfs, name, nil)-cli.Sum(p.mfs, name, nil), interval, p.err)
		}
		for _, r := range cli.LabelValues(c.mfs, "pushfabric_dead_letters_total", "reason") {
			sel := map[string]string{"reason": r}
			dead[r] += perSecond(cli.Sum(c.mfs, "pushfabric_dead_letters_total", sel)-cli.Sum(p.mfs, "pushfabric_dead_letters_total", sel), interval, p.err)
		}
		p50, p99 := latency(p.mfs, c.mfs, p.err)
		ready := "no"
		if cli.Sum(c.mfs, "pushfabric_ready", nil) == 1 {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%s\t%s\t%.0f\t%.0f\t%.0f\t%s\t\n", c.name(), ready,
			cli.Sum(c.mfs, "pushfabric_sessions", nil), rate("pushfabric_pushes_received_total"),
			rate("pushfabric_pushes_written_total"), rate("pushfabric_dead_letters_total"), p50, p99,
			cli.Sum(c.mfs, "pushfabric_pushes_lost_total", nil), cli.Sum(c.mfs, "pushfabric_nats_slow_consumer_events_total", nil),
			cli.Sum(c.mfs, "pushfabric_nats_reconnects_total", nil), node)
	}
	tw.Flush()
	for _, e := range down {
		fmt.Fprintln(w, "  DOWN:", e)
	}
	printTotals(w, cur)
	reasons := make([]string, 0, len(dead))
	for r, v := range dead {
		if v > 0 {
			reasons = append(reasons, r)
		}
	}
	sort.Slice(reasons, func(i, j int) bool { return dead[reasons[i]] > dead[reasons[j]] })
	if len(reasons) > 0 {
		fmt.Fprint(w, "\ndead letters/s by reason:")
		for _, r := range reasons {
			fmt.Fprintf(w, "  %s %.1f", r, dead[r])
		}
		fmt.Fprintln(w)
	}
}

// printTotals prints each node's counts since it started: pushes received,
// written and dead-lettered (by reason), connects and takeovers.
func printTotals(w io.Writer, cur []sample) {
	fmt.Fprintln(w, "\nsince start:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\treceived\twritten\tdead-lettered\tconnects\ttakeovers\t")
	for _, c := range cur {
		if c.err != nil {
			continue
		}
		var byReason []string
		for _, r := range cli.LabelValues(c.mfs, "pushfabric_dead_letters_total", "reason") {
			if n := cli.Sum(c.mfs, "pushfabric_dead_letters_total", map[string]string{"reason": r}); n > 0 {
				byReason = append(byReason, fmt.Sprintf("%s %.0f", r, n))
			}
		}
		deadText := fmt.Sprintf("%.0f", cli.Sum(c.mfs, "pushfabric_dead_letters_total", nil))
		if len(byReason) > 0 {
			deadText += " (" + strings.Join(byReason, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t\n", c.name(),
			cli.Sum(c.mfs, "pushfabric_pushes_received_total", nil), cli.Sum(c.mfs, "pushfabric_pushes_written_total", nil), deadText,
			cli.Sum(c.mfs, "pushfabric_connects_total", nil),
			cli.Sum(c.mfs, "pushfabric_takeovers_total", nil))
	}
	tw.Flush()
}

func perSecond(delta float64, interval time.Duration, prevErr error) float64 {
	if prevErr != nil || delta < 0 {
		return 0
	}
	return delta / interval.Seconds()
}

// latency is the delivery latency's p50 and p99 over the interval, in
// milliseconds, from the histogram's buckets; "-" without deliveries.
func latency(prev, cur map[string]*dto.MetricFamily, prevErr error) (string, string) {
	h := func(mfs map[string]*dto.MetricFamily) *dto.Histogram {
		if mf := mfs["pushfabric_delivery_latency_seconds"]; mf != nil && len(mf.Metric) == 1 {
			return mf.Metric[0].Histogram
		}
		return nil
	}
	c, p := h(cur), h(prev)
	if c == nil || p == nil || prevErr != nil {
		return "-", "-"
	}
	n := float64(c.GetSampleCount() - p.GetSampleCount())
	if n <= 0 {
		return "-", "-"
	}
	q := func(phi float64) string {
		want := phi * n
		lower, lowerCount := 0.0, 0.0
		for i, b := range c.Bucket {
			count := float64(b.GetCumulativeCount() - p.Bucket[i].GetCumulativeCount())
			if count >= want {
				frac := (want - lowerCount) / math.Max(count-lowerCount, 1)
				return fmt.Sprintf("%.1f", 1000*(lower+frac*(b.GetUpperBound()-lower)))
			}
			lower, lowerCount = b.GetUpperBound(), count
		}
		return fmt.Sprintf(">%.0f", 1000*lower)
	}
	return q(0.5), q(0.99)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
