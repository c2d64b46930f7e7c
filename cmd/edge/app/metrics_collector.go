package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/internal/stats"
)

// statsCollector is a prometheus.Collector over one part of the node: each
// scrape reads the part's Stats once and turns it into const metrics, so
// the families it exports agree with each other.
type statsCollector[S any] struct {
	read     func() S // the part's Stats; never blocks for long
	families []family[S]
}

// family is one metric family and how it reads a Stats value.
type family[S any] struct {
	desc    *prometheus.Desc
	collect func(ch chan<- prometheus.Metric, desc *prometheus.Desc, s S)
}

// Describe implements prometheus.Collector.
func (c statsCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.families {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector.
func (c statsCollector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	for _, f := range c.families {
		f.collect(ch, f.desc, s)
	}
}

// counter is a family of one counter.
func counter[S any](name, help string, v func(S) uint64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, nil, nil),
		collect: func(ch chan<- prometheus.Metric, d *prometheus.Desc, s S) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v(s)))
		}}
}

// counterBy is a family of counters with one label, a series for each key
// of the map v reads (the part keeps every key from the start, at 0).
func counterBy[S any, K ~string](name, help, label string, v func(S) map[K]uint64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, []string{label}, nil),
		collect: func(ch chan<- prometheus.Metric, d *prometheus.Desc, s S) {
			for k, n := range v(s) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), string(k))
			}
		}}
}

// gauge is a family of one gauge.
func gauge[S any](name, help string, v func(S) float64) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, nil, nil),
		collect: func(ch chan<- prometheus.Metric, d *prometheus.Desc, s S) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v(s))
		}}
}

// histogram is a family of one histogram, with the buckets the part's
// histogram has.
func histogram[S any](name, help string, v func(S) stats.HistogramSnapshot) family[S] {
	return family[S]{desc: prometheus.NewDesc(name, help, nil, nil),
		collect: func(ch chan<- prometheus.Metric, d *prometheus.Desc, s S) {
			h := v(s)
			ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, h.Cumulative())
		}}
}
