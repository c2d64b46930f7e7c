package tests

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The edge binary, on SIGTERM with pushes queued: clients are told
// shutdown, what can be written by the drain deadline is, the rest is
// dead-lettered as shutdown, and the process exits 0 within the deadline.
func TestGracefulDrainOfTheBinary(t *testing.T) {
	s := natstest.Server(t)
	const drain = 2 * time.Second
	p := startEdgeProcess(t, t.TempDir(),
		"--nats-url", s.ClientURL(), "--node", "drainer",
		"--ws-listen", "", "--tcp-listen", "127.0.0.1:0",
		"--jwt-secret-file", writeSecret(t),
		"--rate", "100", "--burst", "1", // 100 pushes a second per connection: most stay queued
		"--drain-timeout", drain.String())
	c := dial(t, "tcp://"+p.addr("tcp"), "drained", client.Options{})
	nc := natstest.Connect(t, s)
	const n = 400
	for i := range n {
		if ack := request(t, nc, pushMsg("drained", "low", fmt.Sprintf("d%d", i), "")); ack.Status != "enqueued" {
			t.Fatalf("push %d: %+v", i, ack)
		}
	}
	took, err := p.stop(t)
	if err != nil {
		t.Fatalf("edge exited with %v; want status 0", err)
	}
	if took > drain+5*time.Second {
		t.Fatalf("edge took %v to exit; drain deadline %v", took, drain)
	}
	got := map[string]int{}
	for {
		f, err := c.Recv(timeout(t))
		if err != nil {
			if !isClose(err, "shutdown") {
				t.Fatalf("client ended with %v; want close reason shutdown", err)
			}
			break
		}
		got[f.ID]++
	}
	for _, dl := range deadLetters(t, s) {
		if r := dl.Header.Get(protocol.HeaderReason); r != "shutdown" {
			t.Fatalf("dead letter as %s; want shutdown", r)
		}
		got[dl.Header.Get(protocol.HeaderID)]++
	}
	for i := range n {
		if k := got[fmt.Sprintf("d%d", i)]; k != 1 {
			t.Fatalf("push d%d delivered or dead-lettered %d times", i, k)
		}
	}
	t.Logf("drain took %v", took)
}

// On SIGTERM a node with a drain delay turns not ready at once and keeps
// its clients for the delay, so a load balancer checking /readyz stops
// sending it new ones before any client is told shutdown; then it closes
// them shutdown and exits 0.
func TestDrainDelay(t *testing.T) {
	s := natstest.Server(t)
	const delay = 2 * time.Second
	p := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--node", "delayed",
		"--ws-listen", "", "--tcp-listen", "127.0.0.1:0", "--jwt-secret-file", writeSecret(t),
		"--drain-delay", delay.String()) // after the base's 0: the last wins
	c := dial(t, "tcp://"+p.addr("tcp"), "held", client.Options{})
	readyz := "http://" + p.addr("admin") + "/readyz"
	if code, _ := getStatus(t, readyz); code != http.StatusOK {
		t.Fatalf("/readyz %d before the signal", code)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz to say draining", func() bool { code, _ := getStatus(t, readyz); return code == http.StatusServiceUnavailable })
	notReady := time.Now()
	select {
	case <-c.Done():
		t.Fatalf("the client was closed (%v) as the node turned not ready; want it kept for the drain delay", c.Err())
	default:
	}
	if _, err := c.Recv(timeout(t)); !isClose(err, "shutdown") {
		t.Fatalf("client ended with %v; want close reason shutdown", err)
	}
	if held := time.Since(notReady); held < delay-200*time.Millisecond {
		t.Fatalf("the client was closed %v after /readyz said draining; want the drain delay, %v", held, delay)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("edge exited with %v; want status 0", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("edge did not exit")
	}
}

// A node that stops while pushes for its sessions are still arriving
// answers every one of them: written before the client goes, or
// dead-lettered (closed, shutdown), each acked so. Pushes still in a
// subscription that drains as the node stops must reach the dispatcher
// before it ends, not after.
func TestStopAnswersEveryPushInFlight(t *testing.T) {
	s := natstest.Server(t)
	for round := range 5 {
		n := startEdge(t, edgeConfig(t, s, fmt.Sprintf("stopping-%d", round)))
		sessions := []string{"s0", "s1", "s2", "s3"}
		for _, session := range sessions {
			dial(t, n.tcp(), session, client.Options{})
		}
		nc := natstest.Connect(t, s)
		answers := make(chan *nats.Msg, 1<<16)
		inbox := nats.NewInbox()
		sub, err := nc.ChanSubscribe(inbox+".*", answers)
		if err != nil {
			t.Fatal(err)
		}
		const pushes = 20000
		stopped := make(chan struct{})
		for i := range pushes {
			m := pushMsg(sessions[i%len(sessions)], "high", fmt.Sprintf("r%d-%d", round, i), "x")
			m.Reply = fmt.Sprintf("%s.%d", inbox, i)
			m.Header.Set(protocol.HeaderAck, protocol.AckWritten)
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			if i == pushes/2 {
				go func() { // the node stops while the rest arrive
					defer close(stopped)
					n.shutdown(t)
				}()
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		answered := map[string]bool{}
		deadline := time.After(testTimeout)
		for len(answered) < pushes {
			select {
			case m := <-answers:
				if push.NoResponders(m.Header, m.Data) { // published after the node had gone: NATS said so
					answered[m.Subject] = true
					continue
				}
				if _, err := protocol.ParseAck(m); err != nil {
					t.Fatalf("answer %s: %v", m.Subject, err)
				}
				answered[m.Subject] = true
			case <-deadline:
				t.Fatalf("round %d: %d of %d pushes answered; the rest got no ack from the stopping node", round, len(answered), pushes)
			}
		}
		_ = sub.Unsubscribe()
		<-stopped
	}
}
