// A rolling restart of the fleet under load. Every push is written,
// dead-lettered with its reason, or reported to its producer as
// unacknowledged; the last happens, about once in 30,000 pushes, only
// across NATS servers: a push published on one server while its session's
// subscription moves from a node on another server to a node on a third
// can be routed to the server that just lost the subscription, which
// drops it (the publishing server still had the old interest, so it did
// not answer "no responders"). On a single server the same restarts leave
// none unanswered. A producer that must not lose one retries with the
// same push id, and clients drop the repeat (docs/deploying.md): the load
// here does, so every push must end written or dead-lettered, and no
// client may be given one twice.

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
// accounted for, and every session is connected at the end.
func TestRollingRestart(t *testing.T) {
	c := startCluster(t)
	flags := []string{"--drain-delay", "3s", "--redeliver-offline"}
	edges := c.startFleet(t, flags...)
	clients := connectFleet(t, 30)
	allOn(t, clients, "edge1", "edge2", "edge3")
	l := c.load(t, clients, 3)
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
	if n := counts["unacknowledged"]; n > 0 {
		t.Fatalf("%d of %d pushes unacknowledged in a rolling restart, though each was sent up to 3 times", n, l.len())
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
