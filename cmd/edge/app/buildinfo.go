package app

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/push"
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

// nodeInfo is the pushfabric_node_info gauge: always 1, its labels the
// node's name (--node) and subject prefix, so that pushctl top and a
// dashboard name each node scraped by its name, not its address.
func nodeInfo(id push.Identity) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "pushfabric_node_info",
		Help:        "Always 1; the labels name the node (--node) and its subject prefix (--prefix).",
		ConstLabels: prometheus.Labels{"node": id.Node, "prefix": id.Prefix},
	}, func() float64 { return 1 })
}
