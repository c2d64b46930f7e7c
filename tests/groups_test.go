package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// dialGroups connects a client holding session whose token makes it a
// member of groups, closed at cleanup.
func dialGroups(t testing.TB, addr, session string, groups ...string) *client.Conn {
	t.Helper()
	tok, err := token.MintGroups(secret, session, groups, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(timeout(t), addr, client.Options{Token: tok})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, session, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterEdges starts an edge node on each server (edge1, edge2, …),
// mod changing each one's configuration.
func clusterEdges(t *testing.T, servers []*server.Server, mod func(i int, cfg *app.Config)) []*edgeNode {
	t.Helper()
	var nodes []*edgeNode
	for i, s := range servers {
		cfg := edgeConfig(t, s, fmt.Sprintf("edge%d", i+1))
		cfg.Stream.Replicas = len(servers)
		if mod != nil {
			mod(i, &cfg)
		}
		nodes = append(nodes, startEdge(t, cfg))
	}
	return nodes
}

// memberRequest asks the node holding session to change its groups.
func memberRequest(t testing.TB, nc *nats.Conn, session, join, leave string) (protocol.MemberReply, *nats.Msg) {
	t.Helper()
	m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, session), Header: nats.Header{}}
	if join != "" {
		m.Header.Set(protocol.HeaderJoin, join)
	}
	if leave != "" {
		m.Header.Set(protocol.HeaderLeave, leave)
	}
	reply, err := nc.RequestMsgWithContext(timeout(t), m)
	if err != nil {
		t.Fatalf("member request for %s: %v", session, err)
	}
	r, _ := protocol.ParseMemberReply(reply)
	return r, reply
}

// groupSubs is the number of subscriptions to subject the servers' own
// clients hold, summed.
func groupSubs(servers []*server.Server, subject string) int {
	n := 0
	for _, s := range servers {
		sz, err := s.Subsz(&server.SubszOptions{Subscriptions: true, Test: subject})
		if err != nil {
			return -1
		}
		n += sz.Total
	}
	return n
}

// waitForSubs waits until the nodes hold n subscriptions to subject and
// every server has heard of them (n > 0) or of none (n == 0).
func waitForSubs(t testing.TB, servers []*server.Server, subject string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d subscriptions to %s", n, subject), func() bool {
		return groupSubs(servers, subject) == n && !slices.ContainsFunc(servers, func(s *server.Server) bool {
			return s.GlobalAccount().SubscriptionInterest(subject) != (n > 0)
		})
	})
}

// A user with three sessions — two tabs and a phone; two TCP, one
// WebSocket; on two nodes of a three-server cluster — gets one push on
// each from one publish on the third server; the producer hears the
// members counted by the two nodes. The phone's queue is small and its
// node rate-limited: what it cannot take is dead-lettered queue_full for
// the phone alone (its own subject, Push-Group), and the tabs get every
// push, in order.
func TestGroupPushReachesEveryDevice(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	nodes := clusterEdges(t, servers, func(i int, cfg *app.Config) {
		if i == 1 {
			cfg.Edge.Rate, cfg.Edge.Burst, cfg.Edge.QueueLen = 2, 1, 2
		}
	})
	tab1 := dialGroups(t, nodes[0].tcp(), "alice-tab1", "user-alice")
	tab2 := dialGroups(t, nodes[0].ws(), "alice-tab2", "user-alice", "room-1")
	phone := dialGroups(t, nodes[1].tcp(), "alice-phone", "user-alice")
	waitForSubs(t, servers, "push.group.user-alice.high", 2) // one per node
	p := newProducer(t, natstest.Connect(t, servers[2]), "")
	a, err := p.PushGroup(timeout(t), "user-alice", push.High, []byte("hello"), producer.WithID("g0"))
	if err != nil || a.Members != 3 || len(a.Nodes) != 2 || a.Offline {
		t.Fatalf("group push: %+v, %v; want 3 members on 2 nodes", a, err)
	}
	for _, c := range []*client.Conn{tab1, tab2, phone} {
		if f := recv(t, c); f.ID != "g0" || string(f.Payload) != "hello" {
			t.Fatalf("got %s %q; want g0 hello", f.ID, f.Payload)
		}
	}

	const n = 12
	var ids []string
	for i := range n {
		id := "g" + strconv.Itoa(i+1)
		ids = append(ids, id)
		if err := p.PublishGroup("user-alice", push.High, []byte(id), producer.WithID(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*client.Conn{tab1, tab2} {
		for _, id := range ids {
			if f := recv(t, c); f.ID != id {
				t.Fatalf("tab got %s; want %s", f.ID, id)
			}
		}
	}
	// Every push is accounted for at the phone: written, or dead-lettered
	// for it alone.
	dead, got := map[string]bool{}, map[string]bool{}
	waitFor(t, "every push written to the phone or dead-lettered for it", func() bool {
		ctx, cancel := context.WithTimeout(timeout(t), 100*time.Millisecond)
		f, err := phone.Recv(ctx)
		cancel()
		if err == nil {
			got[f.ID] = true
			return false
		}
		if w := nodes[1].Writer.Stats().Written; w == 0 || w != nodes[1].Dispatcher.Stats().DeadLetters {
			return false // the phone's node is still writing them (the stream has acknowledged those written)
		}
		for _, l := range deadLetters(t, servers[0]) {
			dead[l.Header.Get(protocol.HeaderID)] = true
			if l.Subject != "dlq.push.queue_full.alice-phone.high" || l.Header.Get(protocol.HeaderGroup) != "user-alice" ||
				l.Header.Get(protocol.HeaderSubject) != "push.alice-phone.high" {
				t.Fatalf("dead letter %s (Push-Group %q, Push-Subject %q); want the phone's own, queue_full, with Push-Group user-alice",
					l.Subject, l.Header.Get(protocol.HeaderGroup), l.Header.Get(protocol.HeaderSubject))
			}
		}
		return len(got)+len(dead) == n
	})
	for id := range got {
		if dead[id] {
			t.Fatalf("%s both delivered and dead-lettered", id)
		}
	}
	if len(dead) == 0 {
		t.Fatal("no dead letter for the phone; want its queue to have overflowed")
	}
	t.Logf("phone: %d written, %d dead-lettered queue_full", len(got), len(dead))
}

// Membership changes while connected: a backend on another NATS server
// joins and leaves a session's groups; the holding node answers with the
// groups after the change; a leave stops delivery at once; the last
// member leaving drops the node's group subscription (on every server's
// count); a bad name or too many groups is refused and nothing changes.
func TestGroupJoinLeave(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	nodes := clusterEdges(t, servers, nil)
	a := dialGroups(t, nodes[0].tcp(), "ann")
	b := dialGroups(t, nodes[0].ws(), "bob", "room")
	nc := natstest.Connect(t, servers[2])
	r, _ := memberRequest(t, nc, "ann", "room,news", "")
	if r.Error != "" || r.Node != "edge1" || strings.Join(r.Groups, ",") != "news,room" {
		t.Fatalf("join: %+v; want news,room from edge1", r)
	}
	waitForInterest(t, servers, "push.group.news.low")
	// Presence: the group's members on the node, each with its groups.
	reply, err := nc.RequestWithContext(timeout(t), "push.group.room.presence", nil)
	if err != nil {
		t.Fatal(err)
	}
	var members []protocol.SessionInfo
	if err := json.Unmarshal(reply.Data, &members); err != nil || len(members) != 2 {
		t.Fatalf("presence of room: %s, %v; want ann and bob", reply.Data, err)
	}
	for _, m := range members {
		if want := map[string]string{"ann": "news,room", "bob": "room"}[m.Session]; m.Node != "edge1" || strings.Join(m.Groups, ",") != want {
			t.Fatalf("presence of room: %+v; want on edge1 with groups %q", m, want)
		}
	}
	p := newProducer(t, nc, "")
	push1 := func(group, id string, members int) {
		t.Helper()
		ack, err := p.PushGroup(timeout(t), group, push.Low, nil, producer.WithID(id))
		if err != nil || ack.Members != members {
			t.Fatalf("push %s to %s: %+v, %v; want %d members", id, group, ack, err, members)
		}
	}
	push1("room", "r1", 2)
	push1("news", "n1", 1)
	if f := recv(t, a); f.ID != "r1" {
		t.Fatalf("ann got %s; want r1", f.ID)
	}
	if f := recv(t, a); f.ID != "n1" {
		t.Fatalf("ann got %s; want n1", f.ID)
	}
	if f := recv(t, b); f.ID != "r1" {
		t.Fatalf("bob got %s; want r1", f.ID)
	}

	// A bad name, or one group too many: refused, nothing changes.
	for _, join := range []string{"ok,a.b", "all", strings.Repeat("x", 129)} {
		r, reply := memberRequest(t, nc, "ann", join, "room")
		if r.Error == "" || reply.Header.Get(protocol.HeaderError) != protocol.MemberErrorInvalid || strings.Join(r.Groups, ",") != "news,room" {
			t.Fatalf("join %q: %+v (%s); want refused, groups news,room", join, r, reply.Header)
		}
	}
	var many []string
	for i := range push.MaxGroups - 1 {
		many = append(many, "m"+strconv.Itoa(i))
	}
	if r, _ := memberRequest(t, nc, "ann", strings.Join(many, ","), ""); r.Error == "" || len(r.Groups) != 2 {
		t.Fatalf("join %d more: %+v; want refused", len(many), r)
	}

	// Ann leaves room: the next push to room reaches bob only.
	if r, _ := memberRequest(t, nc, "ann", "", "room"); r.Error != "" || strings.Join(r.Groups, ",") != "news" {
		t.Fatalf("leave: %+v; want news", r)
	}
	push1("room", "r2", 1)
	push1("news", "n2", 1)
	if f := recv(t, a); f.ID != "n2" {
		t.Fatalf("ann got %s after leaving room; want n2", f.ID)
	}
	if f := recv(t, b); f.ID != "r2" {
		t.Fatalf("bob got %s; want r2", f.ID)
	}

	// The last member leaves: the subscription goes, on every server.
	before := nodes[0].Dispatcher.Stats().GroupSubscriptions // room, news, all
	if r, _ := memberRequest(t, nc, "ann", "", "news"); r.Error != "" || len(r.Groups) != 0 {
		t.Fatalf("leave news: %+v; want no groups", r)
	}
	if got := nodes[0].Dispatcher.Stats().GroupSubscriptions; got != before-1 {
		t.Fatalf("group subscriptions %d after the last member left; want %d", got, before-1)
	}
	waitForSubs(t, servers, "push.group.news.high", 0)
	if got := groupSubs(servers, "push.group.room.high"); got != 1 {
		t.Fatalf("%d subscriptions to room; want bob's node's one", got)
	}
	ack, err := p.PushGroup(timeout(t), "news", push.High, []byte("x"), producer.WithID("n3"))
	if err != nil || !ack.Offline {
		t.Fatalf("push to news without members: %+v, %v; want offline", ack, err)
	}
	js := natstest.JetStream(t, servers[0])
	waitFor(t, "the offline group dead letter", func() bool {
		st, err := js.Stream(timeout(t), protocol.DeadLetterStream)
		if err != nil {
			return false // the three-replica stream may still be settling
		}
		l, err := st.GetLastMsgForSubject(timeout(t), "dlq.push.offline.group.news.high")
		return err == nil && l.Header.Get(protocol.HeaderGroup) == "news" && l.Header.Get(protocol.HeaderID) == "n3"
	})
	// No one holds the session: no responders, nothing changes.
	_, err = nc.RequestMsgWithContext(timeout(t), &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, "nobody"),
		Header: nats.Header{protocol.HeaderJoin: []string{"room"}}})
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("join for an offline session: %v; want no responders", err)
	}
}

// A broadcast reaches every connection on every node; a group push that
// asks for written or received is refused invalid.
func TestBroadcastReachesEveryConnection(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	nodes := clusterEdges(t, servers, nil)
	var conns []*client.Conn
	for i, n := range nodes {
		conns = append(conns, dialGroups(t, n.tcp(), fmt.Sprintf("t%d", i)), dialGroups(t, n.ws(), fmt.Sprintf("w%d", i), "g"))
	}
	waitForSubs(t, servers, "push.all.high", 3)
	nc := natstest.Connect(t, servers[0])
	p := newProducer(t, nc, "")
	a, err := p.PushGroup(timeout(t), push.AllGroup, push.High, []byte("everyone"), producer.WithID("b1"))
	if err != nil || a.Members != len(conns) || len(a.Nodes) != 3 {
		t.Fatalf("broadcast: %+v, %v; want %d members on 3 nodes", a, err, len(conns))
	}
	for _, c := range conns {
		if f := recv(t, c); f.ID != "b1" {
			t.Fatalf("got %s; want b1", f.ID)
		}
	}
	for _, mode := range []string{protocol.AckWritten, protocol.AckReceived} {
		ack := request(t, nc, &nats.Msg{Subject: "push.group.g.high", Header: nats.Header{protocol.HeaderAck: []string{mode}}})
		if ack.Status != protocol.StatusDead || ack.Reason != string(push.ReasonInvalid) {
			t.Fatalf("group push with Push-Ack %s: %+v; want dead invalid", mode, ack)
		}
		if _, err := p.PushGroup(timeout(t), "g", push.High, nil, producer.WithAck(mode)); err == nil {
			t.Fatalf("PushGroup with ack %s: no error", mode)
		}
	}
}

// A token whose groups claim breaks the rule is refused at connect with
// a clear error (close reason auth); the node holds nothing of it.
func TestGroupsClaimRefused(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	var many []string
	for i := range push.MaxGroups + 1 {
		many = append(many, "g"+strconv.Itoa(i))
	}
	for name, groups := range map[string][]string{"too many": many, "bad name": {"ok", "no.dots"}, "reserved": {"all"}} {
		refusedAuth(t, node, rawToken(t, "carol", groups), name, "groups claim")
	}
	if st := node.Dispatcher.Stats(); st.Sessions != 0 || st.GroupSubscriptions != 0 {
		t.Fatalf("after refusals: %+v; want no session, no group subscription", st)
	}
}

// pushctl push --group and --all reach the members and print how many;
// with no member it exits 1, dead-lettered offline; a token from pushctl
// token --group makes its connection a member; mistakes are usage lines.
func TestPushctlGroupPush(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runTool(t, nil, "pushctl", "token", "--secret-file", secretFile, "--group", "team,ops", "dave")
	if r.code != 0 {
		t.Fatalf("pushctl token: %d %s", r.code, r.stderr)
	}
	c, err := client.Dial(timeout(t), node.tcp(), client.Options{Token: strings.TrimSpace(r.stdout)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	other := dialGroups(t, node.ws(), "erin", "team")
	nats := "--nats=" + s.ClientURL()
	r = runTool(t, nil, "pushctl", "push", nats, "--group", "team", "--id", "t1", "hello team")
	if r.code != 0 || !strings.Contains(r.stdout, "enqueued for 2 members of team on 1 node (push t1)") {
		t.Fatalf("push --group: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, nil, "pushctl", "push", nats, "--all", "--id", "a1", "--json", "hello all")
	if r.code != 0 || !strings.Contains(r.stdout, `"members":2`) {
		t.Fatalf("push --all: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"t1", "a1"} {
		for _, cc := range []*client.Conn{c, other} {
			if f := recv(t, cc); f.ID != want {
				t.Fatalf("got %s; want %s", f.ID, want)
			}
		}
	}
	r = runTool(t, nil, "pushctl", "push", nats, "--group", "nobody", "--id", "n1", "hello?")
	if r.code != 1 || !strings.Contains(r.stdout, "dead: offline") {
		t.Fatalf("push --group nobody: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"--group", "a.b", "x"}, {"--group", "g", "--all", "x"}, {"--group", "g", "dave", "x"}, {"--all", "--ack", "written", "x"}, {"dave"}} {
		r = runTool(t, nil, "pushctl", append([]string{"push", nats}, args...)...)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("pushctl push %q: %d %q; want one usage line, exit 2", args, r.code, r.stderr)
		}
	}
}

// Membership does not follow a takeover: the session's new connection is
// a member of what its own token says. Copies still queued on the old
// node follow the session, as any push does.
func TestGroupCopiesFollowATakeover(t *testing.T) {
	s := natstest.Server(t)
	cfgA := edgeConfig(t, s, "A")
	cfgA.Edge.Rate, cfgA.Edge.Burst = 1, 1 // copies wait in the queue
	a, b := startEdge(t, cfgA), startEdge(t, edgeConfig(t, s, "B"))
	old := dialGroups(t, a.tcp(), "frank", "crew")
	nc := natstest.Connect(t, s)
	for i := range 4 {
		if ack := request(t, nc, &nats.Msg{Subject: "push.group.crew.high", Header: nats.Header{protocol.HeaderID: []string{"c" + strconv.Itoa(i)}}}); ack.Members != 1 {
			t.Fatalf("ack %+v; want 1 member", ack)
		}
	}
	got := map[string]bool{recv(t, old).ID: true}
	fresh := dialGroups(t, b.ws(), "frank") // no groups
	<-old.Done()
	for f, err := old.Recv(timeout(t)); err == nil; f, err = old.Recv(timeout(t)) {
		got[f.ID] = true
	}
	for len(got) < 4 {
		got[recv(t, fresh).ID] = true
	}
	waitFor(t, "the old connection's memberships to end", func() bool { return a.Dispatcher.Stats().GroupSubscriptions == 0 })
	waitForSubs(t, []*server.Server{s}, "push.group.crew.high", 0) // the server has A's unsubscription too
	_, err := nc.RequestMsgWithContext(timeout(t), &nats.Msg{Subject: "push.group.crew.high", Header: nats.Header{}})
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("group push after the takeover: %v; want no responders (the new connection is no member)", err)
	}
	if dl := deadLetters(t, s); len(dl) != 0 {
		t.Fatalf("%d dead letters; want none", len(dl))
	}
}

// rawToken is a token for session with groups signed as they are, unlike
// token.MintGroups, which checks them.
func rawToken(t testing.TB, session string, groups []string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, token.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: session, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Groups: groups}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refusedAuth connects with tok over TCP and WebSocket and wants each
// connection closed auth with a message containing why (what names the
// case).
func refusedAuth(t testing.TB, node *edgeNode, tok, what, why string) {
	t.Helper()
	for _, addr := range []string{node.tcp(), node.ws()} {
		c, err := client.Dial(timeout(t), addr, client.Options{Token: tok})
		if err == nil {
			<-c.Done()
			err = c.Err()
		}
		if !isClose(err, "auth") || !strings.Contains(err.Error(), why) {
			t.Fatalf("%s on %s: %v; want closed auth, saying %q", what, addr, err, why)
		}
	}
}
