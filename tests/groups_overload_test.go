package tests

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// A producer floods a group of 400 members faster than the node can queue
// the copies (each group push costs the node 400 queueings; its fan-out
// backlog holds ten): the overload becomes group dead letters queue_full
// (dlq.push.queue_full.group.<group>.low), one per push the node could not
// take, and NATS never drops anything as a slow consumer. Every push is
// accounted for: every member got it exactly once, or none did and it has
// its group dead letter.
func TestGroupFloodBecomesDeadLettersNotDrops(t *testing.T) {
	const members, pushes = 400, 2000
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.FanoutBacklog = 10 * members // ten group pushes at a time
	cfg.Edge.QueueLen = pushes           // no member's own queue overflows: only the node's fan-out may
	cfg.Writer.Buffer = 1 << 14
	n := startEdge(t, cfg)

	var mu sync.Mutex
	got := make(map[string]int, pushes)
	var copies atomic.Int64
	for i := range members {
		session := fmt.Sprintf("m%d", i)
		tok, err := token.MintGroups(secret, session, []string{"room"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(timeout(t), n.tcp(), client.Options{Token: tok, ReadBufferSize: 4 << 10, OnPush: func(f client.Frame) {
			mu.Lock()
			got[f.ID]++
			mu.Unlock()
			copies.Add(1)
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	waitFor(t, "every member in the group", func() bool { return n.Dispatcher.Stats().Sessions == members })

	nc := natstest.Connect(t, s)
	for i := range pushes {
		m := &nats.Msg{Subject: protocol.GroupSubject(protocol.DefaultPrefix, "room", "low"),
			Header: nats.Header{protocol.HeaderID: []string{fmt.Sprintf("g%d", i)}}, Data: []byte("0123456789abcdef")}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "every group push taken in", func() bool { return n.Dispatcher.Stats().GroupPushes == pushes })
	var overflows uint64
	waitFor(t, "every copy written and every group dead letter stored", func() bool {
		st := n.Dispatcher.Stats()
		overflows = st.GroupOverflows
		return st.FanoutBacklog == 0 && uint64(copies.Load()) == st.MemberCopies && n.Writer.Stats().Written == overflows
	})
	if sc := n.Bus.Stats().SlowConsumers + uint64(s.NumSlowConsumers()); sc != 0 {
		t.Fatalf("%d slow-consumer events; want none", sc)
	}
	dead := map[string]bool{}
	for _, l := range deadLetters(t, s) {
		if l.Subject != "dlq.push.queue_full.group.room.low" || l.Header.Get(protocol.HeaderGroup) != "room" {
			t.Fatalf("dead letter %s (Push-Group %q); want dlq.push.queue_full.group.room.low, Push-Group room", l.Subject, l.Header.Get(protocol.HeaderGroup))
		}
		dead[l.Header.Get(protocol.HeaderID)] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range pushes {
		id := fmt.Sprintf("g%d", i)
		switch k := got[id]; {
		case dead[id] && k != 0:
			t.Fatalf("%s dead-lettered for the group and delivered to %d members", id, k)
		case !dead[id] && k != members:
			t.Fatalf("%s delivered to %d members, not dead-lettered; want all %d", id, k, members)
		}
	}
	if len(dead) == 0 {
		t.Fatal("no group dead letter; want the flood to have overflowed the node's fan-out")
	}
	t.Logf("%d group pushes to %d members: %d delivered to all, %d dead-lettered queue_full for the group",
		pushes, members, pushes-len(dead), len(dead))
}

// A group push every node answers dead (here: expired before it arrived)
// is reported as those answers, not as unanswered, and not parked offline:
// nodes had members.
func TestGroupPushDeadOnEveryNode(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	nodes := clusterEdges(t, servers[:2], nil)
	dialGroups(t, nodes[0].tcp(), "d1", "room")
	dialGroups(t, nodes[1].tcp(), "d2", "room")
	waitForSubs(t, servers, "push.group.room.low", 2)
	p := newProducer(t, natstest.Connect(t, servers[2]), "")
	a, err := p.PushGroup(timeout(t), "room", push.Low, []byte("late"), producer.WithID("late"), producer.WithExpiry(time.Now().Add(-time.Second)))
	if err != nil {
		t.Fatalf("group push: %v; want the nodes' dead answers", err)
	}
	if a.Offline || a.Members != 0 || len(a.Dead) != 2 {
		t.Fatalf("group push: %+v; want dead on 2 nodes, not offline", a)
	}
	for _, d := range a.Dead {
		if d.Reason != string(push.ReasonExpired) {
			t.Fatalf("answer %+v; want dead, expired", d)
		}
	}
}

// A group push the node took in while the session was a member, and
// queues after the session left the group (its last local member), is
// dead-lettered closed for the group, not lost: the node's fan-out is
// busy with a large group's pushes (one lane) while the leave is answered.
func TestGroupPushAfterTheLastMemberLeftIsDeadLettered(t *testing.T) {
	const members = 400
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.DispatchLanes = 1 // the large group's pushes and the small one's share one fan-out
	cfg.Edge.QueueLen = 4096
	n := startEdge(t, cfg)
	for i := range members {
		dialGroups(t, n.tcp(), fmt.Sprintf("big%d", i), "big")
	}
	dialGroups(t, n.tcp(), "last", "small")
	waitFor(t, "every member connected", func() bool { return n.Dispatcher.Stats().Sessions == members+1 })
	nc := natstest.Connect(t, s)
	busy := 0
	for round := 0; ; round++ {
		if round == 20 {
			t.Fatal("the fan-out was never still busy when the leave was answered")
		}
		for range 100 << (round % 4) {
			busy++
			publishGroup(t, nc, "big", fmt.Sprintf("b%d", busy))
		}
		id := fmt.Sprintf("s%d", round)
		publishGroup(t, nc, "small", id)
		waitFor(t, "the small group's push taken in", func() bool { return n.Dispatcher.Stats().GroupPushes == uint64(busy+round+1) })
		if r, _ := memberRequest(t, nc, "last", "", "small"); r.Error != "" {
			t.Fatalf("leave: %+v", r)
		}
		if n.Dispatcher.Stats().FanoutBacklog == 0 { // queued before the leave: try again, with more ahead of it
			if r, _ := memberRequest(t, nc, "last", "small", ""); r.Error != "" {
				t.Fatalf("join: %+v", r)
			}
			continue
		}
		waitFor(t, "the small group's push dead-lettered", func() bool {
			for _, l := range deadLetters(t, s) {
				if l.Header.Get(protocol.HeaderID) == id {
					if l.Subject != "dlq.push.closed.group.small.low" {
						t.Fatalf("dead letter %s; want dlq.push.closed.group.small.low", l.Subject)
					}
					return true
				}
			}
			return false
		})
		return
	}
}

// publishGroup publishes a low group push with id, waiting for nothing.
func publishGroup(t testing.TB, nc *nats.Conn, group, id string) {
	t.Helper()
	m := &nats.Msg{Subject: protocol.GroupSubject(protocol.DefaultPrefix, group, "low"),
		Header: nats.Header{protocol.HeaderID: []string{id}}, Data: []byte(id)}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

// A node whose members' presence does not fit in one NATS message answers
// a group presence request in several, each within the server's
// max_payload, and the asker gathers every member.
func TestGroupPresenceLargerThanOneMessage(t *testing.T) {
	const members = 40
	opts := natstest.Options(t, "small-payload")
	opts.MaxPayload = 4 << 10 // a member's presence is ~250 bytes: ~16 a message
	s := natstest.StartWith(t, opts)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	for i := range members {
		dialGroups(t, n.tcp(), fmt.Sprintf("member-%02d", i), "crowd")
	}
	waitForSubs(t, []*server.Server{s}, "push.group.crowd.low", 1)
	g, err := backend.GroupPresence(timeout(t), natstest.Connect(t, s), "crowd", backend.PresenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != members || g.Answers < 2 || len(g.Invalid) != 0 {
		t.Fatalf("%d members in %d answers (%d invalid); want all %d, in several answers", len(g.Members), g.Answers, len(g.Invalid), members)
	}
}

// A session may not be named as the group subjects are (group, all): a
// token for session "all" would subscribe push.all.*, every broadcast,
// and one for "group" sits beside every group's subjects. The edge
// refuses both at connect, auth, and subscribes nothing.
func TestReservedSessionNamesRefused(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	for _, session := range []string{"all", "group"} {
		refusedAuth(t, node, rawToken(t, session, nil), "session "+session, "reserved")
	}
	if st := node.Dispatcher.Stats(); st.Sessions != 0 {
		t.Fatalf("after refusals: %+v; want no session", st)
	}
}

// A flood of messages on a group's subject whose last token is no
// priority (push.group.room.bogus) is refused as invalid as the lane
// reads each, before the fan-out stage: none of them counts against the
// fan-out backlog, so none is taken for an overflow, and a real group
// push behind them is delivered.
func TestInvalidGroupPushesTakeNoBacklog(t *testing.T) {
	const members, bogus = 50, 2000
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.FanoutBacklog = members // one group push at a time
	n := startEdge(t, cfg)
	var conns []*client.Conn
	for i := range members {
		tok, err := token.MintGroups(secret, fmt.Sprintf("b%d", i), []string{"room"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(timeout(t), n.tcp(), client.Options{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}
	waitFor(t, "every member in the group", func() bool { return n.Dispatcher.Stats().Sessions == members })

	nc := natstest.Connect(t, s)
	for range bogus {
		if err := nc.Publish(protocol.GroupSubject(protocol.DefaultPrefix, "room", "bogus"), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every bogus group push refused", func() bool { return n.Dispatcher.Stats().Invalid == bogus })
	if st := n.Dispatcher.Stats(); st.GroupOverflows != 0 {
		t.Fatalf("%d invalid group pushes counted as overflows of the fan-out backlog; want none", st.GroupOverflows)
	}
	m := &nats.Msg{Subject: protocol.GroupSubject(protocol.DefaultPrefix, "room", "high"), Header: nats.Header{protocol.HeaderID: {"real"}}}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if f := recv(t, c); f.ID != "real" {
			t.Fatalf("a member got %q; want the real group push", f.ID)
		}
	}
}
