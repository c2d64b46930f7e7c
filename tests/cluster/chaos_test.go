package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/lbtest"
	"github.com/pushfabric/pushfabric/token"
)

// The deployment of docs/deploying.md on loopback: three edges, each on a
// loopback address of its own with the ports the shipped HAProxy config
// names, each connected to another NATS server, and HAProxy in front on
// yet another address. (Addresses of their own, so that tests/haproxy_test
// in the other package can run at the same time.)
const lbHost = "127.0.1.5"

var edgeHosts = [3]string{"127.0.1.2", "127.0.1.3", "127.0.1.4"}

// startFleet starts the three edges (with extra flags) behind HAProxy.
func (c *natsCluster) startFleet(t *testing.T, extra ...string) [3]*edgeProcess {
	t.Helper()
	var edges [3]*edgeProcess
	for i := range edges {
		edges[i] = c.startFleetEdge(t, i, extra...)
	}
	lbtest.Start(t, "../../deployments/haproxy/haproxy.cfg", lbHost, edgeHosts)
	return edges
}

// Three edges started at once on a fresh cluster, as compose and a
// Kubernetes Deployment start them, each on its own server, all create the
// dead-letter stream at the same moment: each starts, and PUSH_DLQ has its
// three replicas.
func TestFleetStartsAtOnce(t *testing.T) {
	c := startCluster(t)
	var edges [3]*edgeProcess
	for i := range edges {
		edges[i] = c.launchEdge(t, fmt.Sprintf("edge%d", i+1), i)
	}
	for _, e := range edges {
		e.awaitStart(t)
	}
	js, err := jetstream.New(c.connect(t, "operator", 0).Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().Config.Replicas; n != 3 {
		t.Fatalf("PUSH_DLQ has %d replicas; want 3", n)
	}
}

// startFleetEdge starts edge i of the fleet (edge1, edge2, edge3), on
// every NATS server with server i first, as the load balancer expects it.
func (c *natsCluster) startFleetEdge(t *testing.T, i int, extra ...string) *edgeProcess {
	t.Helper()
	h := edgeHosts[i]
	args := append([]string{"--nats-url", c.urls(i), "--ws-listen", h + ":8080", "--tcp-listen", h + ":8081", "--admin-listen", h + ":9090",
		"--proxy-protocol", "127.0.0.0/8", "--drain-delay", "0"}, extra...)
	return c.startEdge(t, fmt.Sprintf("edge%d", i+1), i, args...)
}

// fleetClient is a reconnecting client through the load balancer, and
// the push ids it received.
type fleetClient struct {
	*client.Session
	mu      sync.Mutex
	got     map[string]bool
	repeats []string // push ids the application was given twice
}

// connectFleet connects n reconnecting clients through the balancer, half
// over WebSocket, half over TCP, each reading its pushes until the test
// ends.
func connectFleet(t *testing.T, n int) []*fleetClient {
	t.Helper()
	var clients []*fleetClient
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i := range n {
		session := fmt.Sprintf("fleet-%d", i)
		addr := "ws://" + lbHost + ":8080/"
		if i%2 == 1 {
			addr = "tcp://" + lbHost + ":8081"
		}
		mint := func(context.Context) (string, error) { return token.Mint(jwtSecret, session, time.Hour) }
		ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
		s, err := client.Connect(ctx, addr, client.Options{}, client.ReconnectOptions{Token: mint,
			BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second})
		cancel()
		if err != nil {
			t.Fatalf("connect %s through the balancer: %v", session, err)
		}
		fc := &fleetClient{Session: s, got: map[string]bool{}}
		clients = append(clients, fc)
		wg.Go(fc.read)
		t.Cleanup(func() { _ = s.Close() })
	}
	return clients
}

func (fc *fleetClient) read() {
	for {
		f, err := fc.Recv(context.Background())
		if err != nil {
			return
		}
		fc.mu.Lock()
		if fc.got[f.ID] {
			fc.repeats = append(fc.repeats, f.ID)
		}
		fc.got[f.ID] = true
		fc.mu.Unlock()
	}
}

// received says whether the client got push id.
func (fc *fleetClient) received(id string) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.got[id]
}

// outcome is how one push ended for its producer.
type outcome struct {
	id, session string
	ack         protocol.Ack
	err         error // unacknowledged: no answer in time, or NATS refused it
	tries       int   // how many times it was sent (with the same push id)
}

// ledger is every push the producers sent.
type ledger struct {
	mu   sync.Mutex
	sent []outcome

	quit    chan struct{}
	once    sync.Once
	pushers sync.WaitGroup
}

func (l *ledger) add(o outcome) {
	l.mu.Lock()
	l.sent = append(l.sent, o)
	l.mu.Unlock()
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent)
}

// stop ends the load and waits for the pushes in flight.
func (l *ledger) stop() {
	l.once.Do(func() { close(l.quit) })
	l.pushers.Wait()
}

// load pushes with Push-Ack: written from one producer per NATS server,
// each to a random session of the fleet in turn, until stopped. A push
// left unacknowledged is sent again with the same push id, up to tries
// times in all (1: never again), as docs/deploying.md tells a producer
// that must not lose one.
func (c *natsCluster) load(t *testing.T, clients []*fleetClient, tries int) *ledger {
	t.Helper()
	l := &ledger{quit: make(chan struct{})}
	for i := range 3 {
		p := startProducer(t, c.connectTo(t, "producer", c.urls(i)))
		l.pushers.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.quit:
					return
				default:
				}
				o := outcome{id: fmt.Sprintf("p%d-%d", i, n), session: clients[rand.IntN(len(clients))].ID()}
				for o.tries < tries && (o.tries == 0 || o.err != nil) {
					o.tries++
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					o.ack, o.err = p.Push(ctx, o.session, push.High, []byte(o.id), producer.WithID(o.id), producer.WithAck(protocol.AckWritten))
					cancel()
				}
				l.add(o)
			}
		})
	}
	t.Cleanup(l.stop) // before the producers stop
	return l
}

// accounts sorts every push the producers sent: written (and whether its
// client has it), dead-lettered by reason (each found in PUSH_DLQ, or for
// offline, redelivered to its client when it connected), or
// unacknowledged (the producer was told it does not know). A push that is
// none of these, or dead without its letter, fails the test.
func accounts(t *testing.T, l *ledger, clients []*fleetClient, store *dlq.Store) map[string]int {
	t.Helper()
	bySession := map[string]*fleetClient{}
	for _, c := range clients {
		bySession[c.ID()] = c
	}
	var letters map[string]string // push id → reason
	var readErr error
	// Tried again while its replicas elect a leader, after a server loss:
	// on a loaded machine that can take longer than other waits.
	waitWithin(t, "PUSH_DLQ read", edgeStartLimit, func() bool {
		letters = map[string]string{}
		readErr = store.Each(t.Context(), dlq.Filter{}, func(e dlq.Entry) error {
			letters[e.ID()] = string(e.Reason())
			return nil
		})
		return readErr == nil
	}, func() string { return fmt.Sprint(readErr) })
	for _, c := range clients {
		c.mu.Lock()
		if len(c.repeats) > 0 {
			t.Errorf("session %s was given pushes %v twice; the client drops a repeated push id", c.ID(), c.repeats)
		}
		c.mu.Unlock()
	}
	counts := map[string]int{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.sent {
		switch {
		case o.err != nil:
			counts["unacknowledged"]++
			t.Logf("push %s to %s unacknowledged: %v (received: %v, dead letter: %q)", o.id, o.session, o.err, bySession[o.session].received(o.id), letters[o.id])
		case o.ack.Status == protocol.StatusWritten && bySession[o.session].received(o.id) && o.tries > 1:
			counts["written, received, after a retry"]++
		case o.ack.Status == protocol.StatusWritten && bySession[o.session].received(o.id):
			counts["written, received"]++
		case o.ack.Status == protocol.StatusWritten:
			counts["written, not received"]++
		case o.ack.Status == protocol.StatusDead && letters[o.id] == string(o.ack.Reason):
			counts["dead-lettered "+string(o.ack.Reason)]++
		case o.ack.Status == protocol.StatusDead && o.ack.Reason == string(push.ReasonOffline) && bySession[o.session].received(o.id):
			counts["parked offline, then redelivered"]++ // --redeliver-offline: delivered on connect, and deleted
		case o.ack.Status == protocol.StatusDead:
			t.Errorf("push %s: acked dead %s, but PUSH_DLQ holds %q for it", o.id, o.ack.Reason, letters[o.id])
		default:
			t.Errorf("push %s to %s: acked %+v, neither written nor dead", o.id, o.session, o.ack)
		}
	}
	var lines []string
	for k, v := range counts {
		lines = append(lines, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(lines)
	t.Logf("%d pushes: %s", len(l.sent), strings.Join(lines, ", "))
	return counts
}

// allOn waits until every client holds its session on one of nodes.
func allOn(t *testing.T, clients []*fleetClient, nodes ...string) {
	t.Helper()
	waitFor(t, "every client connected to "+strings.Join(nodes, " or "), func() bool {
		for _, c := range clients {
			node := c.Node()
			if !contains(nodes, node) {
				return false
			}
		}
		return true
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// kill -9 of one edge while producers push with Push-Ack: written: its
// clients reconnect through the balancer to the other two, and every push
// is accounted for — written, dead-lettered with its reason, or reported
// to its producer as unacknowledged.
func TestKillNineOneEdge(t *testing.T) {
	c := startCluster(t)
	edges := c.startFleet(t, "--redeliver-offline")
	clients := connectFleet(t, 30)
	allOn(t, clients, "edge1", "edge2", "edge3")
	onFirst := 0
	for _, cl := range clients {
		if cl.Node() == "edge1" {
			onFirst++
		}
	}
	if onFirst == 0 {
		t.Fatal("the balancer gave edge1 no client")
	}
	l := c.load(t, clients, 1)
	waitFor(t, "pushes under way", func() bool { return l.len() >= 300 })
	if err := edges[0].cmd.Process.Kill(); err != nil { // kill -9
		t.Fatal(err)
	}
	allOn(t, clients, "edge2", "edge3")
	before := l.len()
	waitFor(t, "pushes after the reconnects", func() bool { return l.len() >= before+300 })
	l.stop()
	counts := accounts(t, l, clients, openDLQ(t, c.connect(t, "operator", 2)))
	if counts["written, received"] == 0 {
		t.Fatal("no push was written and received")
	}
	t.Logf("edge1 held %d of %d sessions when it was killed", onFirst, len(clients))
	var errs []error
	for _, cl := range clients {
		if err := cl.Err(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("%s: %w", cl.ID(), err))
		}
	}
	if len(errs) > 0 {
		t.Fatalf("clients that stopped: %v", errs)
	}
}

// One NATS server of three stopped (kill -9) under load: the edges and
// producers on it reconnect to the others, delivery goes on, and PUSH_DLQ,
// with three replicas, keeps every dead letter it had.
func TestNATSServerLoss(t *testing.T) {
	c := startCluster(t)
	c.startFleet(t, "--redeliver-offline")
	clients := connectFleet(t, 30)
	allOn(t, clients, "edge1", "edge2", "edge3")
	operator := c.connectTo(t, "operator", c.urls(0))
	store := openDLQ(t, operator)
	p := startProducer(t, c.connectTo(t, "producer", c.urls(0)))
	for i := range 5 { // dead letters to keep: pushes for sessions no one holds
		if ack, err := p.Push(t.Context(), fmt.Sprintf("away-%d", i), push.Low, []byte("parked")); err != nil || ack.Reason != string(push.ReasonOffline) {
			t.Fatalf("park: %+v %v", ack, err)
		}
	}
	parked := countLetters(t, store, "")
	l := c.load(t, clients, 1)
	waitFor(t, "pushes under way", func() bool { return l.len() >= 300 })
	if err := c.servers[2].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	before := l.len()
	waitFor(t, "pushes after the loss", func() bool { return l.len() >= before+300 })
	l.stop()
	accounts(t, l, clients, store)
	written := 0
	for _, o := range l.sent[before:] {
		if o.err == nil && o.ack.Status == protocol.StatusWritten {
			written++
		}
	}
	if written < 100 {
		t.Fatalf("%d of the %d pushes after n3 went were written; want delivery to go on", written, len(l.sent)-before)
	}
	waitFor(t, "every dead letter kept", func() bool { n, err := letters(t, store, ""); return err == nil && n >= parked })
}
