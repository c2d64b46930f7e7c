package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ScrapeMetrics reads a Prometheus text exposition (an edge's /metrics),
// giving up after 5 s.
func ScrapeMetrics(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mfs map[string]*dto.MetricFamily
	err := Get(ctx, url, func(body io.Reader) (err error) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err = p.TextToMetricFamilies(body)
		return err
	})
	return mfs, err
}

// Get reads url (an admin listener's page) with read, which is given the
// body of a 200 answer; any other status is an error naming it.
func Get(ctx context.Context, url string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return read(resp.Body)
}

// Sum adds the values of a family's counters and gauges whose labels
// include sel (nil: all of them); 0 when the family is missing.
func Sum(mfs map[string]*dto.MetricFamily, name string, sel map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	total := 0.0
	for _, m := range mf.Metric {
		if !hasLabels(m, sel) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, sel map[string]string) bool {
	for k, v := range sel {
		ok := false
		for _, lp := range m.Label {
			if lp.GetName() == k && lp.GetValue() == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// LabelValues lists the values a family's metrics have for label.
func LabelValues(mfs map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	if mf := mfs[name]; mf != nil {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label {
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	return out
}
