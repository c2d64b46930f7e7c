package tests

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// killAckTimeout is how long a producer waits for a push's ack; a push the
// killed node held is reported unacknowledged after it (an outcome the
// test accepts, not a failure).
const killAckTimeout = 5 * time.Second

// outcomes records what the producers were told about each push.
type outcomes struct {
	mu sync.Mutex
	of map[string]string // push id → written, dead or unacknowledged
}

func (o *outcomes) set(id, outcome string) {
	o.mu.Lock()
	o.of[id] = outcome
	o.mu.Unlock()
}

// The edge binary is killed with SIGKILL while producers push with
// Push-Ack: written: every push is written (the client got it),
// dead-lettered, or reported unacknowledged to its producer, which can
// publish it again. None vanishes, and every push acked written reached the
// client. (With the default ack, enqueued, the pushes in the node's queues
// die with it; docs/pushing.md says so.)
func TestKillNineLosesNoPushAckedWritten(t *testing.T) {
	s := natstest.Server(t)
	p := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--node", "doomed",
		"--ws-listen", "", "--tcp-listen", "127.0.0.1:0", "--jwt-secret-file", writeSecret(t))
	got := &ledger{seen: map[string]int{}}
	c := dial(t, "tcp://"+p.addr("tcp"), "alice", client.Options{OnPush: got.onPush})
	prod := newProducer(t, natstest.Connect(t, s), "")

	told := &outcomes{of: map[string]string{}}
	var written, afterKill atomic.Int64
	killed := make(chan struct{})
	push := func(id string) {
		ctx, cancel := context.WithTimeout(context.Background(), killAckTimeout)
		defer cancel()
		ack, err := prod.Push(ctx, "alice", push.Low, []byte(id), producer.WithID(id), producer.WithAck(protocol.AckWritten))
		switch {
		case err != nil:
			told.set(id, "unacknowledged")
		case ack.Status == protocol.StatusWritten:
			told.set(id, "written")
			written.Add(1)
		case ack.Status == protocol.StatusDead:
			told.set(id, "dead")
		default:
			t.Errorf("push %s: ack %+v", id, ack)
		}
	}
	var wg sync.WaitGroup
	for w := range 16 { // 16 pushes in flight at a time
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-killed:
					if afterKill.Add(1) > 100 {
						return
					}
				default:
				}
				push(fmt.Sprintf("w%d-%d", w, i))
			}
		})
	}
	waitFor(t, "200 pushes written", func() bool { return written.Load() >= 200 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(killed)
	<-p.exited
	wg.Wait()
	if err := prod.Stop(timeout(t)); err != nil { // writes the offline dead letters
		t.Fatal(err)
	}
	<-c.Done() // what the client got is all it will get

	dead := map[string]bool{}
	for _, dl := range deadLetters(t, s) {
		dead[dl.Header.Get(protocol.HeaderID)] = true
	}
	counts := map[string]int{}
	for id, outcome := range told.of {
		counts[outcome]++
		delivered := got.count(id) > 0
		switch {
		case outcome == "written" && !delivered:
			t.Errorf("push %s was acked written and never reached the client", id)
		case outcome == "dead" && !dead[id]:
			t.Errorf("push %s was acked dead and is not in %s", id, "PUSH_DLQ")
		case !delivered && !dead[id] && outcome != "unacknowledged":
			t.Errorf("push %s (%s) vanished: not delivered, not dead-lettered, not reported unacknowledged", id, outcome)
		}
	}
	if counts["dead"] == 0 {
		t.Errorf("no push was dead-lettered after the kill: the scenario did not push on past it")
	}
	t.Logf("pushed %d with Push-Ack: written, killed the node after %d written: %v; the client got %d", len(told.of), 200, counts, len(got.seen))
}
