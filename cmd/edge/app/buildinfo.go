package app

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/internal/version"
)

// buildInfo is the pushfabric_build_info gauge: always 1, its labels the
// build b (version, revision, modified, go_version), so that a dashboard
// shows which build each node runs and a query can join it to the node's
// other series. The startup log line names the same version.
func buildInfo(b version.Info) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushfabric_build_info",
		Help: "Always 1; the labels say which build of pushfabric the node runs (version, VCS revision, modified tree, Go toolchain).",
		ConstLabels: prometheus.Labels{
			"version":    b.Version,
			"revision":   b.Revision,
			"modified":   strconv.FormatBool(b.Modified),
			"go_version": b.GoVersion,
		},
	}, func() float64 { return 1 })
}
