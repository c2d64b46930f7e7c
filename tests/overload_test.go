package tests

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Producers publish far faster than the edge may write to 2,000 sessions
// (each connection is limited to 20 pushes a second): the overload becomes
// queue_full dead letters, NATS never drops anything as a slow consumer,
// and every push is accounted for exactly once.
func TestOverloadBecomesDeadLettersNotDrops(t *testing.T) {
	const sessions, producers, perProducer = 2000, 4, 25_000
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.QueueLen = 8
	cfg.Edge.Rate, cfg.Edge.Burst = 20, 1
	cfg.Writer.Buffer = 1 << 17 // room for the burst of dead letters
	n := startEdge(t, cfg)

	var delivered atomic.Int64
	var mu sync.Mutex
	seen := make(map[string]int, producers*perProducer)
	for i := range sessions {
		dial(t, n.tcp(), fmt.Sprintf("s%d", i), client.Options{ReadBufferSize: 4 << 10, OnPush: func(f client.Frame) {
			mu.Lock()
			seen[f.ID]++
			mu.Unlock()
			delivered.Add(1)
		}})
	}

	var wg sync.WaitGroup
	for p := range producers {
		nc := natstest.Connect(t, s)
		wg.Go(func() {
			for i := range perProducer {
				id := fmt.Sprintf("p%d-%d", p, i)
				_ = nc.PublishMsg(pushMsg(fmt.Sprintf("s%d", (i*producers+p)%sessions), "low", id, "0123456789abcdef"))
			}
			if err := nc.Flush(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	const published = producers * perProducer

	// Wait until the edge has handed every push to a queue or the dead
	// letters, then until the queues have drained.
	waitFor(t, "dispatch of every push", func() bool { return n.Dispatcher.Stats().Dispatched == published })
	waitFor(t, "dead letters written", func() bool {
		st := n.Writer.Stats()
		return st.Written+st.Lost+uint64(delivered.Load()) == published
	})
	if st := n.Writer.Stats(); st.Lost != 0 {
		t.Fatalf("%d dead letters lost", st.Lost)
	}
	if sc := n.Bus.Stats().SlowConsumers + uint64(s.NumSlowConsumers()); sc != 0 {
		t.Fatalf("%d slow-consumer events; want none", sc)
	}
	dls := deadLetters(t, s)
	if int64(len(dls))+delivered.Load() != published {
		t.Fatalf("delivered %d + dead-lettered %d != published %d", delivered.Load(), len(dls), published)
	}
	for _, dl := range dls {
		if r := dl.Header.Get(protocol.HeaderReason); r != "queue_full" {
			t.Fatalf("dead letter %s as %s; want queue_full", dl.Header.Get(protocol.HeaderID), r)
		}
		seen[dl.Header.Get(protocol.HeaderID)]++
	}
	if len(seen) != published {
		t.Fatalf("%d distinct pushes accounted for; want %d", len(seen), published)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("push %s accounted for %d times", id, k)
		}
	}
	t.Logf("published %d: delivered %d, dead-lettered %d (queue_full)", published, delivered.Load(), len(dls))
}
