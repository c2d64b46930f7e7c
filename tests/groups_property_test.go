package tests

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"pgregory.net/rapid"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// groupPropertyChecks caps the group property's cases: each runs real
// clients on two edge nodes.
const groupPropertyChecks = 40

// Property (issue 16): whatever the sequence of joins, leaves and group
// pushes at either priority, every session connected throughout receives
// every push sent to a group it was a member of when the push was sent,
// exactly once (by id), in order per priority, and nothing else; the
// nodes' acks count exactly those members.
func TestGroupMembershipProperty(t *testing.T) {
	capChecks(t, groupPropertyChecks)
	s := natstest.Server(t)
	nodes := []*edgeNode{startEdge(t, edgeConfig(t, s, "A")), startEdge(t, edgeConfig(t, s, "B"))}
	nc := natstest.Connect(t, s)
	cases := 0
	rapid.Check(t, func(rt *rapid.T) {
		cases++
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout) // each case's waits, bounded
		defer cancel()
		end := "end-" + strconv.Itoa(cases)
		// The case's own groups: a connection of an earlier case is still
		// a member of its groups until it has ended.
		groups := []string{}
		for _, g := range []string{"red", "green", "blue"} {
			groups = append(groups, g+"-"+strconv.Itoa(cases))
		}
		n := rapid.IntRange(1, 4).Draw(rt, "sessions")
		var conns []*client.Conn
		member := make([]map[string]bool, n)
		want := make([][2][]string, n) // by session, by priority: the ids it must get, in order
		for i := range n {
			initial := rapid.SliceOfDistinct(rapid.SampledFrom(groups), rapid.ID).Draw(rt, "token groups")
			member[i] = map[string]bool{}
			for _, g := range initial {
				member[i][g] = true
			}
			session := fmt.Sprintf("p%d-%d", cases, i)
			conns = append(conns, dialGroups(t, nodes[i%2].tcp(), session, append(initial, end)...))
		}
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for step := range steps {
			i := rapid.IntRange(0, n-1).Draw(rt, "session")
			g := rapid.SampledFrom(groups).Draw(rt, "group")
			session := fmt.Sprintf("p%d-%d", cases, i)
			switch rapid.IntRange(0, 2).Draw(rt, "action") {
			case 0:
				memberChange(ctx, rt, nc, session, g, "")
				member[i][g] = true
			case 1:
				memberChange(ctx, rt, nc, session, "", g)
				delete(member[i], g)
			default:
				p := push.Priority(rapid.IntRange(0, 1).Draw(rt, "priority"))
				id := fmt.Sprintf("c%d-s%d", cases, step)
				members := 0
				for j := range n {
					if member[j][g] {
						want[j][p] = append(want[j][p], id)
						members++
					}
				}
				groupPushCounted(ctx, rt, nc, g, p, id, members)
			}
		}
		// A last push at each priority to a group every session is in:
		// once a session has both, it has everything sent before them.
		for p := range 2 {
			groupPushCounted(ctx, rt, nc, end, push.Priority(p), end+"-"+strconv.Itoa(p), n)
		}
		for i, c := range conns {
			var got [2][]string
			for seen := 0; seen < 2; {
				f, err := c.Recv(ctx)
				if err != nil {
					rt.Fatalf("session %d: %v", i, err)
				}
				if f.ID == end+"-0" || f.ID == end+"-1" {
					seen++
					continue
				}
				got[f.Priority&1] = append(got[f.Priority&1], f.ID)
			}
			for p := range 2 {
				if !slices.Equal(got[p], want[i][p]) {
					rt.Fatalf("session %d at %v got %v; want %v", i, push.Priority(p), got[p], want[i][p])
				}
			}
		}
	})
	t.Logf("%d cases", cases)
}

// memberChange joins or leaves one group, and checks it was done.
func memberChange(ctx context.Context, rt *rapid.T, nc *nats.Conn, session, join, leave string) {
	m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, session), Header: nats.Header{}}
	m.Header.Set(protocol.HeaderJoin, join)
	m.Header.Set(protocol.HeaderLeave, leave)
	reply, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		rt.Fatalf("member request: %v", err)
	}
	r, err := protocol.ParseMemberReply(reply)
	if err != nil || join != "" && !slices.Contains(r.Groups, join) || leave != "" && slices.Contains(r.Groups, leave) {
		rt.Fatalf("join %q leave %q: %+v, %v", join, leave, r, err)
	}
}

// groupPushCounted pushes to group and waits until the nodes' acks count
// members (none: no responders).
func groupPushCounted(ctx context.Context, rt *rapid.T, nc *nats.Conn, group string, p push.Priority, id string, members int) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		rt.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	m := &nats.Msg{Subject: protocol.GroupSubject(protocol.DefaultPrefix, group, p.String()), Reply: inbox,
		Header: nats.Header{protocol.HeaderID: []string{id}}}
	if err := nc.PublishMsg(m); err != nil {
		rt.Fatal(err)
	}
	got := 0
	for got < members || members == 0 {
		r, err := sub.NextMsgWithContext(ctx)
		if members == 0 && (err == nats.ErrNoResponders || err == nil && push.NoResponders(r.Header, r.Data)) {
			return
		}
		if err != nil {
			rt.Fatalf("push %s to %s: %v after %d members; want %d", id, group, err, got, members)
		}
		a, err := protocol.ParseAck(r)
		if err != nil || a.Status != protocol.StatusEnqueued {
			rt.Fatalf("push %s to %s: ack %+v, %v", id, group, a, err)
		}
		got += a.Members
	}
	if got != members {
		rt.Fatalf("push %s to %s: %d members; want %d", id, group, got, members)
	}
}
