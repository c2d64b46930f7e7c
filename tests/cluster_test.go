package tests

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Three NATS servers routed on loopback, an edge node on each: a push
// published on any server reaches the node holding the session; a session
// that reconnects to another node takes over, and the pushes queued on the
// old node follow it. Every push is delivered (during the hand-over perhaps
// twice, with its id) and none is dead-lettered.
func TestClusterDeliveryAndTakeover(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	var nodes []*edgeNode
	for i, s := range servers {
		cfg := edgeConfig(t, s, fmt.Sprintf("edge%d", i+1))
		cfg.Stream.Replicas = 3
		if i == 0 {
			cfg.Edge.Rate, cfg.Edge.Burst = 1, 1 // pushes pile up on edge1
		}
		nodes = append(nodes, startEdge(t, cfg))
	}

	// Delivery from every NATS server to a session on edge2.
	c := dial(t, nodes[1].ws(), "roamer", client.Options{})
	// edge2's subscription is confirmed by its own server before the
	// welcome; the routes carry it to the others a moment later.
	waitForInterest(t, servers, "push.roamer.high")
	for i, s := range servers {
		nc := natstest.Connect(t, s)
		id := fmt.Sprintf("via-n%d", i+1)
		if ack := request(t, nc, pushMsg("roamer", "high", id, "")); ack.Status != "enqueued" || ack.Node != "edge2" {
			t.Fatalf("push via n%d: ack %+v; want enqueued by edge2", i+1, ack)
		}
		if f := recv(t, c); f.ID != id {
			t.Fatalf("got %s; want %s", f.ID, id)
		}
	}

	// Takeover: the session moves to edge1 (rate-limited, so pushes queue
	// there), then to edge3; what was queued on edge1 follows it.
	old := dial(t, nodes[0].tcp(), "roamer", client.Options{})
	<-c.Done()
	if !isClose(c.Err(), "replaced") {
		t.Fatalf("edge2's connection ended with %v; want replaced", c.Err())
	}
	nc := natstest.Connect(t, servers[2])
	const n = 20
	for i := range n {
		if ack := request(t, nc, pushMsg("roamer", "low", fmt.Sprintf("q%d", i), "")); ack.Node != "edge1" {
			t.Fatalf("push q%d acked %+v; want edge1", i, ack)
		}
	}
	got := map[string]int{}
	got[recv(t, old).ID]++ // the first is written at once; the rest wait for tokens
	fresh := dial(t, nodes[2].ws(), "roamer", client.Options{})
	<-old.Done()
	if !isClose(old.Err(), "replaced") {
		t.Fatalf("edge1's connection ended with %v; want replaced", old.Err())
	}
	for f, err := old.Recv(timeout(t)); err == nil; f, err = old.Recv(timeout(t)) {
		got[f.ID]++ // written to edge1's client before the takeover
	}
	for len(got) < n {
		got[recv(t, fresh).ID]++
	}
	// During a hand-over a push can reach both nodes (NATS routes it to the
	// old one until it learns the subscription is gone, and that one
	// forwards it): clients drop repeats by id (docs/pushing.md). None may be
	// missing.
	repeats := 0
	for i := range n {
		switch k := got[fmt.Sprintf("q%d", i)]; {
		case k == 0 || k > 2:
			t.Fatalf("push q%d delivered %d times: %v", i, k, got)
		case k == 2:
			repeats++
		}
	}
	t.Logf("%d of %d pushes reached the client twice during the hand-over", repeats, n)
	for _, node := range nodes {
		node.shutdown(t)
	}
	if dls := deadLetters(t, servers[0]); len(dls) != 0 {
		for _, dl := range dls {
			t.Logf("dead letter %s: %s by %s", dl.Header.Get("Push-Id"), dl.Header.Get("Push-Reason"), dl.Header.Get("Push-Node"))
		}
		t.Fatalf("%d dead letters; want none: every push was delivered", len(dls))
	}
}

// A client on the node of one NATS server asks a backend on another: the
// request crosses the cluster, and the 100 replies come back in order.
// Backends in a queue group on two servers share the requests.
func TestClusterRequests(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	node := startEdge(t, edgeConfig(t, servers[0], "edge1"))
	served := map[string]*atomic.Int64{}
	for _, i := range []int{1, 2} {
		name := fmt.Sprintf("n%d", i+1)
		served[name] = &atomic.Int64{}
		serve(t, natstest.Connect(t, servers[i]), "feed", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
			served[name].Add(1)
			return numbered(100)
		})
	}
	// The backends' interest reaches n1 a moment after they subscribed.
	probe := natstest.Connect(t, servers[0])
	waitFor(t, "the backends' interest on n1", func() bool {
		_, err := probe.Request(protocol.RequestSubject(protocol.DefaultPrefix, "feed"), nil, testTimeout)
		return err == nil
	})
	c := dial(t, node.tcp(), "alice", client.Options{})
	const requests = 20
	for range requests {
		got, err := collect(t, c, "feed", nil)
		if err != nil || len(got) != 100 {
			t.Fatalf("%d replies, %v", len(got), err)
		}
		for i, p := range got {
			if p != strconv.Itoa(i) {
				t.Fatalf("reply %d is %q", i, p)
			}
		}
	}
	t.Logf("requests served: n2 %d, n3 %d (probes included)", served["n2"].Load(), served["n3"].Load())
	if served["n2"].Load()+served["n3"].Load() < requests {
		t.Fatalf("backends served %d and %d of %d requests", served["n2"].Load(), served["n3"].Load(), requests)
	}
}

// waitForInterest waits until every server of a cluster knows of a
// subscriber to subject: interest travels between routed servers
// asynchronously, so a publish right after a subscribe on another server
// can find no responders.
func waitForInterest(t testing.TB, servers []*server.Server, subject string) {
	t.Helper()
	waitFor(t, "interest in "+subject+" on every server", func() bool {
		for _, s := range servers {
			if !s.GlobalAccount().SubscriptionInterest(subject) {
				return false
			}
		}
		return true
	})
}
