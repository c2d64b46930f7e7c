package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Membership requests a backend publishes one after another, without
// waiting for each answer, change the session's groups in the order they
// were published (NATS keeps one publisher's order): twenty joins and
// then a request asking for one more leave the session a member of all
// twenty-one, and the answer to the last says so.
func TestMembershipRequestsApplyInOrder(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dialGroups(t, n.tcp(), "ann")
	waitFor(t, "ann connected", func() bool { return n.Dispatcher.Stats().Sessions == 1 })
	nc := natstest.Connect(t, s)
	for round := range 5 {
		var want []string
		for i := range 20 {
			g := fmt.Sprintf("r%dg%02d", round, i)
			want = append(want, g)
			m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, "ann"),
				Header: nats.Header{protocol.HeaderJoin: []string{g}}}
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		last := fmt.Sprintf("r%dlast", round)
		r, _ := memberRequest(t, nc, "ann", last, "")
		want = append(want, last)
		slices.Sort(want)
		if r.Error != "" || strings.Join(r.Groups, ",") != strings.Join(want, ",") {
			t.Fatalf("round %d: the last request's answer %+v; want groups %v (every earlier join applied first)", round, r, want)
		}
		if r, _ = memberRequest(t, nc, "ann", "", strings.Join(want, ",")); r.Error != "" || len(r.Groups) != 0 {
			t.Fatalf("round %d: leave all: %+v; want no groups", round, r)
		}
	}
}

// A group push racing its group's last local member leaving is either
// queued to the member (acknowledged enqueued for one member, and
// received) or dead-lettered closed for the group (acknowledged dead):
// never acknowledged enqueued for no member with nothing kept. The
// member leaves and joins again while the pushes flow.
func TestGroupPushRacingTheLastLeaveIsAccounted(t *testing.T) {
	const pushes = 20000
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.QueueLen = 2 * pushes // no queue_full: the race is the only way to lose one
	n := startEdge(t, cfg)
	ann := dialGroups(t, n.tcp(), "ann", "g")
	waitFor(t, "ann connected", func() bool { return n.Dispatcher.Stats().Sessions == 1 })
	nc := natstest.Connect(t, s)
	acks := make(chan *nats.Msg, pushes)
	inbox := nats.NewInbox()
	sub, err := nc.ChanSubscribe(inbox+".*", acks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	mc := natstest.Connect(t, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < pushes; i += 20 {
			for j := i; j < i+20; j++ {
				id := fmt.Sprintf("p%d", j)
				m := &nats.Msg{Subject: protocol.GroupSubject(protocol.DefaultPrefix, "g", "low"), Reply: inbox + "." + id,
					Header: nats.Header{protocol.HeaderID: []string{id}}, Data: []byte(id)}
				if err := nc.PublishMsg(m); err != nil {
					t.Error(err)
					return
				}
			}
			_ = nc.Flush()
		}
	}()
	toggles := 0
	for running := true; running; toggles++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := mc.RequestMsg(&nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, "ann"),
			Header: nats.Header{protocol.HeaderLeave: []string{"g"}}}, testTimeout); err != nil {
			t.Fatal(err)
		}
		memberRequest(t, mc, "ann", "g", "")
	}
	enqueued, dead, noResponders := 0, 0, 0
	for range pushes {
		var m *nats.Msg
		select {
		case m = <-acks:
		case <-timeout(t).Done():
			t.Fatalf("%d acks of %d pushes (%d enqueued, %d dead, %d no responders)", enqueued+dead+noResponders, pushes, enqueued, dead, noResponders)
		}
		if m.Header.Get("Status") == "503" {
			noResponders++
			continue
		}
		a, err := protocol.ParseAck(m)
		switch {
		case err != nil:
			t.Fatalf("ack %s: %v", m.Data, err)
		case a.Status == protocol.StatusEnqueued && a.Members == 1:
			enqueued++
		case a.Status == protocol.StatusDead && a.Reason == "closed":
			dead++
		default:
			t.Fatalf("ack %s for %s: want enqueued for 1 member, or dead closed", m.Data, m.Subject)
		}
	}
	t.Logf("%d toggles: %d enqueued, %d dead closed, %d no responders", toggles, enqueued, dead, noResponders)
	for range enqueued {
		recv(t, ann)
	}
	waitFor(t, "a closed group letter for each push acknowledged dead", func() bool {
		n := 0
		for _, l := range deadLetters(t, s) {
			if l.Subject == "dlq.push.closed.group.g.low" {
				n++
			}
		}
		return n == dead
	})
}

// A flood of broadcast presence requests (each answered with every
// connection of the node) does not hold up pushes: a push published after
// fifty of them reaches its session before the node has answered half.
func TestPresenceFloodDoesNotHoldUpPushes(t *testing.T) {
	const sessions, requests = 1000, 50
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Bus.DispatchLanes = 1 // the sessions' pushes and the broadcast group share the one lane
	n := startEdge(t, cfg)
	var first *client.Conn
	for i := range sessions {
		c := dialGroups(t, n.tcp(), fmt.Sprintf("s%04d", i))
		if i == 0 {
			first = c
		}
	}
	waitFor(t, "every session connected", func() bool { return n.Dispatcher.Stats().Sessions == sessions })
	nc := natstest.Connect(t, s)
	inbox := nats.NewInbox()
	sub, err := nc.Subscribe(inbox, func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	for range requests {
		if err := nc.PublishRequest(protocol.GroupSubject(protocol.DefaultPrefix, push.AllGroup, protocol.Presence), inbox, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.PublishMsg(pushMsg("s0000", "high", "after", "x")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, first); f.ID != "after" {
		t.Fatalf("got %s; want after", f.ID)
	}
	if got := n.Dispatcher.Stats().Presences; got >= requests/2 {
		t.Fatalf("the push arrived after %d of %d presence answers; want it ahead of them", got, requests)
	}
	waitFor(t, "every presence request answered", func() bool { return n.Dispatcher.Stats().Presences == requests })
}

// A token naming the most groups, each of the longest name, is taken on
// both transports; the connection gets a push to each group, presence
// lists them all, and they go when it does.
func TestLargestGroupsClaim(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	var groups []string
	for i := range push.MaxGroups {
		groups = append(groups, fmt.Sprintf("%02d%s", i, strings.Repeat("g", push.MaxNameLen-2)))
	}
	for _, addr := range []string{n.tcp(), n.ws()} {
		c := dialGroups(t, addr, "big", groups...)
		nc := natstest.Connect(t, s)
		waitForSubs(t, []*server.Server{s}, protocol.GroupSubject(protocol.DefaultPrefix, groups[push.MaxGroups-1], "high"), 1)
		for _, g := range groups {
			publishGroup(t, nc, g, g[:2])
		}
		got := map[string]bool{} // groups are not ordered among themselves
		for range groups {
			got[recv(t, c).ID] = true
		}
		if len(got) != push.MaxGroups {
			t.Fatalf("%s: got %v; want a push from each of %d groups", addr, got, push.MaxGroups)
		}
		reply, err := nc.Request("push.big.presence", nil, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		var info protocol.SessionInfo
		if err := json.Unmarshal(reply.Data, &info); err != nil || len(info.Groups) != push.MaxGroups {
			t.Fatalf("%s: presence %s, %v; want %d groups", addr, reply.Data, err, push.MaxGroups)
		}
		_ = c.Close()
		waitFor(t, "the groups' subscriptions gone", func() bool { return n.Dispatcher.Stats().GroupSubscriptions == 0 })
		waitForSubs(t, []*server.Server{s}, protocol.GroupSubject(protocol.DefaultPrefix, groups[0], "high"), 0)
	}
}

// Two thousand sessions, each the one member of a group of its own and of
// a second joined while connected, hold one subscription per group; when
// they leave, every one of them is gone, on the node and on the server.
func TestManyGroupsLeaveNoSubscriptions(t *testing.T) {
	const sessions = 2000
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	var conns []*client.Conn
	for i := range sessions {
		conns = append(conns, dialGroups(t, n.tcp(), fmt.Sprintf("u%04d", i), fmt.Sprintf("own%04d", i)))
	}
	waitFor(t, "every session connected", func() bool { return n.Dispatcher.Stats().Sessions == sessions })
	for i := range sessions {
		m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, fmt.Sprintf("u%04d", i)),
			Header: nats.Header{protocol.HeaderJoin: []string{fmt.Sprintf("joined%04d", i)}}}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every group subscribed", func() bool { return n.Dispatcher.Stats().GroupSubscriptions == 2*sessions+1 })
	for _, c := range conns {
		_ = c.Close()
	}
	waitFor(t, "every session gone", func() bool { return n.Dispatcher.Stats().Sessions == 0 })
	waitFor(t, "no group subscription left on the node", func() bool { return n.Dispatcher.Stats().GroupSubscriptions == 0 })
	waitFor(t, "no push subscription left on the server", func() bool { return len(pushSubs(t, s)) == 0 })
}

// pushSubs lists the subjects of the server's subscriptions under push.
func pushSubs(t testing.TB, s *server.Server) []string {
	t.Helper()
	sz, err := s.Subsz(&server.SubszOptions{Subscriptions: true, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range sz.Subs {
		if strings.HasPrefix(d.Subject, "push.") {
			out = append(out, d.Subject)
		}
	}
	return out
}

// A kick in the middle of a group flood closes the member revoked, and
// every copy it had been given is accounted for: written to it before
// the close, or dead-lettered closed for its own session with Push-Group;
// the other member, rate-limited as well, is not disturbed.
func TestKickDuringAGroupFlood(t *testing.T) {
	const pushes = 300
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.Rate, cfg.Edge.Burst, cfg.Edge.QueueLen = 200, 1, 2*pushes // copies wait in the queue
	n := startEdge(t, cfg)
	kicked := dialGroups(t, n.tcp(), "kicked", "g")
	other := dialGroups(t, n.ws(), "other", "g")
	waitForSubs(t, []*server.Server{s}, "push.group.g.low", 1)
	nc := natstest.Connect(t, s)
	for i := range pushes {
		publishGroup(t, nc, "g", fmt.Sprintf("p%03d", i))
	}
	waitFor(t, "every copy queued", func() bool { return n.Dispatcher.Stats().MemberCopies == 2*pushes })
	reply, err := nc.Request("push.kicked.kick", nil, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var kr protocol.KickResult
	if err := json.Unmarshal(reply.Data, &kr); err != nil || !kr.Closed {
		t.Fatalf("kick: %s, %v; want closed", reply.Data, err)
	}
	got := map[string]bool{}
	for {
		f, err := kicked.Recv(timeout(t))
		if err != nil {
			if !isClose(err, wire.CloseRevoked) {
				t.Fatalf("kicked: %v; want closed revoked", err)
			}
			break
		}
		got[f.ID] = true
	}
	waitFor(t, "a closed letter for each copy not written", func() bool {
		letters := 0
		for _, l := range deadLetters(t, s) {
			id := l.Header.Get(protocol.HeaderID)
			if l.Subject != "dlq.push.closed.kicked.low" || l.Header.Get(protocol.HeaderGroup) != "g" || got[id] {
				t.Fatalf("dead letter %s of %s (group %q); want closed for kicked, group g, not written", l.Subject, id, l.Header.Get(protocol.HeaderGroup))
			}
			letters++
		}
		return len(got)+letters == pushes
	})
	for i := range pushes {
		if f := recv(t, other); f.ID != fmt.Sprintf("p%03d", i) {
			t.Fatalf("other got %s; want p%03d", f.ID, i)
		}
	}
}

// A takeover of a member in the middle of a group flood, the new
// connection (on another node) a member too: every push reaches the old
// connection, the new one (handed over or directly), or a dead letter;
// none is lost, and a push the new connection gets twice (handed over and
// directly) has one id, which clients drop as a repeat.
func TestTakeoverDuringAGroupFlood(t *testing.T) {
	const pushes = 3000
	s := natstest.Server(t)
	cfgA := edgeConfig(t, s, "A")
	cfgA.Edge.Rate, cfgA.Edge.Burst, cfgA.Edge.QueueLen = 2000, 1, pushes // copies wait in A's queue
	cfgB := edgeConfig(t, s, "B")
	cfgB.Edge.QueueLen = 2 * pushes // hand-overs and direct copies together: no queue_full
	a, b := startEdge(t, cfgA), startEdge(t, cfgB)
	old := dialGroups(t, a.tcp(), "frank", "crew")
	waitForSubs(t, []*server.Server{s}, "push.group.crew.low", 1)
	nc := natstest.Connect(t, s)
	published := make(chan struct{})
	half := make(chan struct{})
	go func() {
		defer close(published)
		for i := range pushes {
			if i == pushes/2 {
				close(half)
			}
			publishGroup(t, nc, "crew", fmt.Sprintf("p%04d", i))
		}
		_ = nc.Flush()
	}()
	<-half
	fresh := dialGroups(t, b.ws(), "frank", "crew")
	<-published
	got := map[string]int{}
	for f, err := old.Recv(timeout(t)); err == nil; f, err = old.Recv(timeout(t)) {
		got[f.ID]++
	}
	if !isClose(old.Err(), wire.CloseReplaced) {
		t.Fatalf("old connection: %v; want replaced", old.Err())
	}
	letters := map[string]string{}
	repeats := 0
	waitFor(t, "every push accounted for", func() bool {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			f, err := fresh.Recv(ctx)
			cancel()
			if err != nil {
				break
			}
			if got[f.ID]++; got[f.ID] > 1 {
				repeats++
			}
		}
		for _, l := range deadLetters(t, s) {
			letters[l.Header.Get(protocol.HeaderID)] = l.Subject
		}
		for i := range pushes {
			id := fmt.Sprintf("p%04d", i)
			if got[id] == 0 && letters[id] == "" {
				return false
			}
		}
		return true
	})
	reasons, alsoReceived := map[string]int{}, 0
	for id, subject := range letters {
		reasons[subject]++
		if got[id] > 0 {
			alsoReceived++
		}
	}
	t.Logf("%d ids received, %d repeats, dead letters %v (%d of them received all the same)", len(got), repeats, reasons, alsoReceived)
}

// A node shut down in the middle of a group flood answers every group
// push it took in: enqueued for its member (then written, or
// dead-lettered for the member) or dead (a letter for the group); the
// rest are "no responders". None is left unanswered.
func TestShutdownDuringAGroupFlood(t *testing.T) {
	const pushes = 5000
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.Rate, cfg.Edge.Burst, cfg.Edge.QueueLen = 5000, 1, pushes
	n := startEdge(t, cfg)
	member := dialGroups(t, n.tcp(), "m", "g")
	waitForSubs(t, []*server.Server{s}, "push.group.g.low", 1)
	nc := natstest.Connect(t, s)
	acks := make(chan *nats.Msg, pushes)
	inbox := nats.NewInbox()
	sub, err := nc.ChanSubscribe(inbox+".*", acks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	half := make(chan struct{})
	go func() {
		for i := range pushes {
			if i == pushes/4 {
				close(half)
			}
			id := fmt.Sprintf("p%04d", i)
			m := &nats.Msg{Subject: "push.group.g.low", Reply: inbox + "." + id, Header: nats.Header{protocol.HeaderID: []string{id}}, Data: []byte(id)}
			if err := nc.PublishMsg(m); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-half
	written := make(chan int)
	go func() {
		w := 0
		for _, err := member.Recv(timeout(t)); err == nil; _, err = member.Recv(timeout(t)) {
			w++
		}
		written <- w
	}()
	n.shutdown(t)
	status := map[string]int{}
	for range pushes {
		select {
		case m := <-acks:
			if m.Header.Get("Status") == "503" {
				status["no responders"]++
				continue
			}
			a, err := protocol.ParseAck(m)
			if err != nil {
				t.Fatal(err)
			}
			status[a.Status+" "+a.Reason]++
		case <-timeout(t).Done():
			t.Fatalf("%v: %d answers of %d pushes", status, len(acks), pushes)
		}
	}
	w := <-written
	letters := map[string]int{}
	for _, l := range deadLetters(t, s) {
		letters[l.Subject]++
	}
	t.Logf("answers %v; %d written; dead letters %v", status, w, letters)
	memberLetters := 0
	for subject, k := range letters {
		if strings.HasPrefix(subject, "dlq.push.") && strings.HasSuffix(subject, ".m.low") {
			memberLetters += k
		}
	}
	if enq := status["enqueued "]; w+memberLetters != enq {
		t.Errorf("%d enqueued for the member; %d written and %d dead-lettered for it", enq, w, memberLetters)
	}
	if dead := status["dead closed"]; letters["dlq.push.closed.group.g.low"] != dead {
		t.Errorf("%d answered dead closed; %d group letters", dead, letters["dlq.push.closed.group.g.low"])
	}
}

// A token's groups claim naming a group twice, out of order, makes the
// connection a member of each once: presence lists them sorted, once
// each. A connection of the most groups may leave one and join another
// in one request: it is then a member of as many as before.
func TestGroupsClaimWithRepeats(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	var claim []string
	for i := range push.MaxGroups {
		claim = append(claim, fmt.Sprintf("g%02d", push.MaxGroups-1-i))
	}
	claim = append(claim, "g00", "g05")
	dialGroups(t, n.tcp(), "rep", claim...)
	nc := natstest.Connect(t, s)
	reply, err := nc.Request("push.rep.presence", nil, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var info protocol.SessionInfo
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values(claim)))))
	if strings.Join(info.Groups, ",") != strings.Join(want, ",") {
		t.Fatalf("presence groups %v; want %v", info.Groups, want)
	}
	r, _ := memberRequest(t, nc, "rep", "extra", "g00")
	if r.Error != "" || len(r.Groups) != push.MaxGroups || !slices.Contains(r.Groups, "extra") || slices.Contains(r.Groups, "g00") {
		t.Fatalf("leave g00, join extra: %+v; want %d groups with extra, without g00", r, push.MaxGroups)
	}
}

// Group and broadcast subjects with a token that is no priority (a
// control word, presence's look-alikes, nonsense) are dead-lettered
// invalid for the group, answered dead when asked, and disturb nothing:
// the member then gets a plain group push.
func TestGroupSubjectsWithOtherTokens(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	c := dialGroups(t, n.tcp(), "m", "g")
	waitForSubs(t, []*server.Server{s}, "push.group.g.low", 1)
	nc := natstest.Connect(t, s)
	subjects := []string{"push.group.g.ctl", "push.group.g.kick", "push.group.g.member", "push.all.member",
		"push.all.kick", "push.all.ctl", "push.all.bogus", "push.group.g.HIGH"}
	for _, subject := range subjects {
		reply, err := nc.RequestMsg(&nats.Msg{Subject: subject, Header: nats.Header{protocol.HeaderJoin: []string{"x"}}, Data: []byte("?")}, testTimeout)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if a, err := protocol.ParseAck(reply); err != nil || a.Status != protocol.StatusDead || a.Reason != "invalid" {
			t.Fatalf("%s: answer %s, %v; want dead invalid", subject, reply.Data, err)
		}
	}
	reply, err := nc.Request("push.group.g.presence", []byte("a payload"), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var members []protocol.SessionInfo
	if err := json.Unmarshal(reply.Data, &members); err != nil || len(members) != 1 || members[0].Session != "m" {
		t.Fatalf("presence of g: %s, %v; want m", reply.Data, err)
	}
	publishGroup(t, nc, "g", "ok")
	if f := recv(t, c); f.ID != "ok" {
		t.Fatalf("got %s; want ok", f.ID)
	}
	waitFor(t, "an invalid letter for each", func() bool {
		invalid := 0
		for _, l := range deadLetters(t, s) {
			if strings.HasPrefix(l.Subject, "dlq.push.invalid.group.") {
				invalid++
			}
		}
		return invalid == len(subjects)
	})
	if r, _ := memberRequest(t, nc, "m", "", ""); strings.Join(r.Groups, ",") != "g" {
		t.Fatalf("groups %v after the look-alike member requests; want g", r.Groups)
	}
}

// A flood of group presence requests beyond what waits to be answered is
// counted, not queued without bound: each request is answered or counted
// dropped.
func TestPresenceFloodIsBounded(t *testing.T) {
	const sessions, requests = 200, 4000
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	for i := range sessions {
		dialGroups(t, n.tcp(), fmt.Sprintf("s%03d", i))
	}
	waitFor(t, "every session connected", func() bool { return n.Dispatcher.Stats().Sessions == sessions })
	nc := natstest.Connect(t, s)
	for range requests { // answered to no one: the server drops the answers
		if err := nc.PublishRequest("push.all.presence", "nobody.listens", nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every request answered or dropped", func() bool {
		st := n.Dispatcher.Stats()
		return st.Presences+st.PresencesDropped == requests
	})
	if st := n.Dispatcher.Stats(); st.PresencesDropped == 0 {
		t.Fatalf("%d answered, none dropped; want the backlog to overflow", st.Presences)
	}
}

// A group letter's Push-Group names the group its subject names, not
// what the producer wrote there: an expired push and an invalid one, each
// with a forged Push-Group.
func TestGroupLetterNamesItsOwnGroup(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dialGroups(t, n.tcp(), "m", "g")
	waitForSubs(t, []*server.Server{s}, "push.group.g.low", 1)
	nc := natstest.Connect(t, s)
	forged := func(id string, h nats.Header) {
		t.Helper()
		h.Set(protocol.HeaderID, id)
		h.Set(protocol.HeaderGroup, "other")
		if err := nc.PublishMsg(&nats.Msg{Subject: "push.group.g.low", Header: h, Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	forged("expired", nats.Header{protocol.HeaderExpires: []string{"2001-01-01T00:00:00Z"}})
	forged("invalid", nats.Header{protocol.HeaderAck: []string{"written"}})
	waitFor(t, "both group letters", func() bool { return len(deadLetters(t, s)) == 2 })
	for _, l := range deadLetters(t, s) {
		if !strings.HasSuffix(l.Subject, ".group.g.low") || l.Header.Get(protocol.HeaderGroup) != "g" {
			t.Fatalf("letter %s of %s: Push-Group %q; want a letter of group g saying g", l.Subject, l.Header.Get(protocol.HeaderID), l.Header.Get(protocol.HeaderGroup))
		}
	}
}

// A flood of membership requests without a reply subject is taken like
// any other, and costs the node no goroutine each: nothing waits to
// confirm an answer no one will read. The requests change no subscription
// (a join of a group the session is in, a leave of one it is not in), so
// the goroutines of this process (the node runs in it) stay within a few
// hundred of where they were while 20,000 arrive.
func TestUnansweredMembershipFloodSpawnsNothing(t *testing.T) {
	const requests = 20000
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dialGroups(t, n.tcp(), "flo", "f1")
	waitFor(t, "flo connected", func() bool { return n.Dispatcher.Stats().Sessions == 1 })
	nc := natstest.Connect(t, s)
	before := runtime.NumGoroutine()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), int64(runtime.NumGoroutine())))
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	for i := range requests {
		h := nats.Header{protocol.HeaderJoin: {"f1"}} // a member already: no subscription comes or goes
		if i%2 == 1 {
			h = nats.Header{protocol.HeaderLeave: {"f2"}} // not a member
		}
		if err := nc.PublishMsg(&nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, "flo"), Header: h}); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := memberRequest(t, nc, "flo", "last", "")
	close(stop)
	<-sampled
	if r.Error != "" || strings.Join(r.Groups, ",") != "f1,last" {
		t.Fatalf("the answer after the flood: %+v; want groups f1, last", r)
	}
	if grew := peak.Load() - int64(before); grew > 300 {
		t.Fatalf("goroutines grew by %d during %d unanswered membership requests; want no goroutine per request", grew, requests)
	}
}
