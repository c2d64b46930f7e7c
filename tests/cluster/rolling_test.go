//go:build rollingrestart

// The rolling-restart test reproduces an open defect, so it is kept out
// of make test until it is fixed: in a rolling restart of the three edges
// under load with Push-Ack: written, about 1 to 3 pushes in 60,000 are
// neither written, nor dead-lettered, nor received by their client; their
// producer is only told it got no answer. Run it with
//
//	go test -tags rollingrestart -run TestRollingRestart -v ./tests/cluster
//
// Everything else it checks holds: each edge exits 0 after SIGTERM, the
// clients move through the balancer, every other push is written or
// dead-lettered with its reason, every session is connected at the end.

package cluster

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// waitExit waits for e to exit and returns how it exited.
func waitExit(t *testing.T, e *edgeProcess) error {
	t.Helper()
	select {
	case err := <-e.exited:
		e.exited <- err // for the cleanup
		return err
	case <-time.After(waitLimit):
		t.Fatalf("edge %s did not exit", e.node)
	}
	return nil
}

// A rolling restart of all three edges with SIGTERM under load: each in
// turn turns not ready, is taken out of the balancer's rotation during
// its drain delay, tells its clients shutdown and exits 0, and a new one
// takes its place; the clients move through the balancer, every push is
// written or dead-lettered with its reason (none goes unanswered), and
// every session is connected at the end.
func TestRollingRestart(t *testing.T) {
	c := startCluster(t)
	flags := []string{"--drain-delay", "3s", "--redeliver-offline"}
	edges := c.startFleet(t, flags...)
	clients := connectFleet(t, 30)
	allOn(t, clients, "edge1", "edge2", "edge3")
	l := c.load(t, clients)
	for i := range edges {
		waitFor(t, "pushes under way", func() bool { return l.len() >= 200*(i+1) })
		if err := edges[i].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := waitExit(t, edges[i]); err != nil {
			t.Fatalf("edge%d exited with %v after SIGTERM; want status 0", i+1, err)
		}
		edges[i] = c.startFleetEdge(t, i, flags...)
		waitFor(t, fmt.Sprintf("the new edge%d ready", i+1), func() bool { return ready(edgeHosts[i] + ":9090") })
	}
	allOn(t, clients, "edge1", "edge2", "edge3")
	before := l.len()
	waitFor(t, "pushes after the restarts", func() bool { return l.len() >= before+200 })
	l.stop()
	counts := accounts(t, l, clients, openDLQ(t, c.connect(t, "operator", 0)))
	if counts["unacknowledged"] > 0 {
		t.Fatalf("%d pushes unanswered in a rolling restart; want every push written or dead-lettered", counts["unacknowledged"])
	}
}

// ready says whether the edge whose admin listener is at addr answers
// /readyz 200.
func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
