package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

var jwtSecret = []byte("an HS256 secret of at least 32 bytes, for tests")

// The shipped permissions, on the shipped cluster: what a role must not do
// is refused, and the server says so to the client; everything each role
// does — the edge binary, the producer client, the backend helper, pushctl
// — works under them, with no permission error on either edge node.
func TestPermissions(t *testing.T) {
	c := startCluster(t)
	// e1 is rate-limited, so pushes queue there for a hand-over to follow;
	// it makes PUSH_DLQ with the replicas it chooses, e2 asks for 3.
	e1 := c.startEdge(t, "e1", 0, "--rate", "1", "--burst", "1")
	e2 := c.startEdge(t, "e2", 1, "--redeliver-offline", "--dlq-replicas", "3")
	ops := c.connect(t, "operator", 2)
	store := openDLQ(t, ops)
	if r := replicas(t, ops); r != 3 {
		t.Fatalf("PUSH_DLQ has %d replicas; want 3", r)
	}

	t.Run("refused", func(t *testing.T) {
		prod := c.connect(t, "producer", 1)
		subscribeRefused(t, prod, "push.>")
		subscribeRefused(t, prod, "_INBOX_edge.>")
		ctl := c.connect(t, "edge", 0)
		spy, err := ctl.SubscribeSync("push.x.ctl")
		if err != nil {
			t.Fatal(err)
		}
		if err := ctl.Flush(); err != nil {
			t.Fatal(err)
		}
		publishRefused(t, prod, "push.x.ctl")
		if m, err := spy.NextMsg(100 * time.Millisecond); err == nil {
			t.Fatalf("a refused takeover reached the edge's subscription: %v", m.Subject)
		}
		publishRefused(t, c.connect(t, "backend", 2), "push.x.high")
		purgeRefused(t, c, store)
	})

	alice := dial(t, e2, "alice")
	t.Run("allowed/written", func(t *testing.T) {
		c.interest(t, 0, "push.alice.high")
		p := startProducer(t, c.connect(t, "producer", 0)) // n1; alice is on e2, on n2
		ack, err := p.Push(t.Context(), "alice", push.High, []byte("hi"), producer.WithAck(protocol.AckWritten))
		if err != nil || ack.Status != protocol.StatusWritten || ack.Node != "e2" {
			t.Fatalf("push: ack %+v, %v; want written by e2", ack, err)
		}
		if f := recv(t, alice); string(f.Payload) != "hi" {
			t.Fatalf("alice got %q; want hi", f.Payload)
		}
	})

	t.Run("allowed/stream", func(t *testing.T) {
		const frames = 500
		startBackend(t, c.connect(t, "backend", 2), "count", frames)
		c.interest(t, 1, "req.push.count")
		got := 0
		for f, err := range alice.Request(t.Context(), "count", nil) {
			if err != nil {
				t.Fatalf("after %d frames: %v", got, err)
			}
			if want := fmt.Sprint(got); string(f.Payload) != want {
				t.Fatalf("frame %q; want %s", f.Payload, want)
			}
			got++
		}
		if got != frames {
			t.Fatalf("%d frames; want %d", got, frames)
		}
	})

	t.Run("allowed/park and replay", func(t *testing.T) {
		p := startProducer(t, c.connect(t, "producer", 1))
		ack, err := p.Push(t.Context(), "carol", push.High, []byte("parked"), producer.WithID("carol-1"))
		if err != nil || ack.Status != protocol.StatusDead || ack.Reason != string(push.ReasonOffline) {
			t.Fatalf("push to offline carol: ack %+v, %v; want dead offline", ack, err)
		}
		waitForLetters(t, store, "carol", 1)
		carol := dial(t, e1, "carol") // e1 does not redeliver: the operator replays
		c.interest(t, 2, "push.carol.high")
		out, err := exec.Command(binary(t, "pushctl"), "dlq", "replay", "--session", "carol",
			"--nats", c.url(2), "--nats-nkey", c.seeds["operator"], "--nats-inbox-prefix", "_INBOX_operator").CombinedOutput()
		if err != nil {
			t.Fatalf("pushctl dlq replay: %v\n%s", err, out)
		}
		if f := recv(t, carol); f.ID != "carol-1" {
			t.Fatalf("carol got %s; want carol-1", f.ID)
		}
		waitForLetters(t, store, "carol", 0)
	})

	t.Run("allowed/park and redeliver", func(t *testing.T) {
		p := startProducer(t, c.connect(t, "producer", 2))
		if ack, err := p.Push(t.Context(), "dave", push.Low, []byte("parked"), producer.WithID("dave-1")); err != nil || ack.Status != protocol.StatusDead {
			t.Fatalf("push to offline dave: ack %+v, %v; want dead offline", ack, err)
		}
		waitForLetters(t, store, "dave", 1)
		if f := recv(t, dial(t, e2, "dave")); f.ID != "dave-1" {
			t.Fatalf("dave got %s; want dave-1", f.ID)
		}
		waitForLetters(t, store, "dave", 0)
	})

	t.Run("allowed/hand-over", func(t *testing.T) {
		old := dial(t, e1, "erin")
		c.interest(t, 2, "push.erin.low")
		p := startProducer(t, c.connect(t, "producer", 2))
		const n = 10
		for i := range n {
			ack, err := p.Push(t.Context(), "erin", push.Low, nil, producer.WithID(fmt.Sprintf("erin-%d", i)))
			if err != nil || ack.Node != "e1" {
				t.Fatalf("push %d: ack %+v, %v; want enqueued by e1", i, ack, err)
			}
		}
		fresh := dial(t, e2, "erin")
		got := map[string]bool{}
		for f, err := old.Recv(t.Context()); err == nil; f, err = old.Recv(t.Context()) {
			got[f.ID] = true // written before the takeover
		}
		for len(got) < n {
			got[recv(t, fresh).ID] = true
		}
		waitForHandovers(t, e1)
	})

	t.Run("allowed/operator's nats CLI", func(t *testing.T) {
		nats := natstest.CLI(t)
		env := append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
		servers := strings.Join([]string{c.url(0), c.url(1), c.url(2)}, ",")
		run(t, env, nats, "context", "save", "push-ops", "--server", servers,
			"--nkey", c.seeds["operator"], "--inbox-prefix", "_INBOX_operator")
		run(t, env, nats, "--context", "push-ops", "stream", "info", "PUSH_DLQ")
		run(t, env, nats, "--context", "push-ops", "stream", "add", "--config", "../../deployments/nats/push-replay-stream.json")
		run(t, env, nats, "--context", "push-ops", "stream", "rm", "PUSH_REPLAY", "-f")
		run(t, env, binary(t, "pushctl"), "dlq", "stats", "--context", "push-ops")
	})

	for _, e := range []*edgeProcess{e1, e2} {
		if err := get("http://"+e.addr("admin")+"/readyz", nil); err != nil { // it asks JetStream
			t.Errorf("%s not ready: %v", e.node, err)
		}
		if v := e.metric(t, "pushfabric_nats_permission_errors_total"); v != "0" {
			t.Errorf("%s: %s permission errors; want 0", e.node, v)
		}
	}
	if letters := countLetters(t, store, ""); letters != 0 {
		t.Errorf("%d dead letters left; want 0", letters)
	}
}

// run runs a command with env, which must succeed.
func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", filepath.Base(name), args, err, out)
	}
}

// subscribeRefused subscribes rc to subject and waits for the server to
// refuse it.
func subscribeRefused(t *testing.T, rc *roleConn, subject string) {
	t.Helper()
	if _, err := rc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	rc.refused(t, subject)
}

// publishRefused publishes on subject from rc and waits for the server to
// refuse it.
func publishRefused(t *testing.T, rc *roleConn, subject string) {
	t.Helper()
	if err := rc.Publish(subject, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	rc.refused(t, subject)
}

// purgeRefused has the edge's user purge PUSH_DLQ, which holds a letter
// the producer parked: the server refuses it and the letter stays.
func purgeRefused(t *testing.T, c *natsCluster, store *dlq.Store) {
	t.Helper()
	p := startProducer(t, c.connect(t, "producer", 0))
	if _, err := p.Push(t.Context(), "nobody", push.High, nil); err != nil {
		t.Fatal(err)
	}
	waitForLetters(t, store, "nobody", 1)
	edge := c.connect(t, "edge", 0)
	js, err := jetstream.New(edge.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, protocol.DeadLetterStream) // allowed: the edge reads the stream's info
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("the edge's user purged PUSH_DLQ")
	}
	edge.refused(t, "$JS.API.STREAM.PURGE.PUSH_DLQ")
	if n := countLetters(t, store, "nobody"); n != 1 {
		t.Fatalf("%d dead letters for nobody after the refused purge; want 1", n)
	}
	if _, err := store.Purge(t.Context(), dlq.Filter{Session: "nobody"}); err != nil { // the operator may
		t.Fatalf("operator's purge: %v", err)
	}
}

// openDLQ opens the dead-letter stream as rc's user.
func openDLQ(t *testing.T, rc *roleConn) *dlq.Store {
	t.Helper()
	js, err := jetstream.New(rc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	var store *dlq.Store
	waitFor(t, "PUSH_DLQ, made by the edge nodes", func() bool {
		store, err = dlq.Open(t.Context(), js, protocol.DefaultPrefix)
		return err == nil
	})
	return store
}

// replicas is the number of PUSH_DLQ's replicas, as rc's user reads it.
func replicas(t *testing.T, rc *roleConn) int {
	t.Helper()
	js, err := jetstream.New(rc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Replicas
}

// countLetters counts the dead letters of session ("": all).
func countLetters(t *testing.T, store *dlq.Store, session string) int {
	t.Helper()
	n, err := letters(t, store, session)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func letters(t *testing.T, store *dlq.Store, session string) (int, error) {
	n := 0
	err := store.Each(t.Context(), dlq.Filter{Session: session}, func(dlq.Entry) error {
		n++
		return nil
	})
	return n, err
}

// waitForLetters waits until session has n dead letters. (Reading the
// stream fails while its replicas elect a leader: it is tried again.)
func waitForLetters(t *testing.T, store *dlq.Store, session string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d dead letters for %s", n, session), func() bool {
		got, err := letters(t, store, session)
		return err == nil && got == n
	})
}

// waitForHandovers waits until e has handed over pushes and each was
// taken.
func waitForHandovers(t *testing.T, e *edgeProcess) {
	t.Helper()
	waitFor(t, "hand-overs taken", func() bool {
		v := e.metric(t, `pushfabric_handovers_total{outcome="taken"}`)
		return v != "0"
	})
	for _, outcome := range []string{"dead", "no_responders", "timeout", "unsent"} {
		if v := e.metric(t, fmt.Sprintf(`pushfabric_handovers_total{outcome=%q}`, outcome)); v != "0" {
			t.Errorf("%s hand-overs %s; want 0", v, outcome)
		}
	}
}

// startProducer starts the producer client on rc, stopped at cleanup
// (within waitLimit: a dead letter the server refuses is retried until
// then).
func startProducer(t *testing.T, rc *roleConn) *producer.Producer {
	t.Helper()
	p, err := producer.New(rc.Conn, producer.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop the producer: %v", err)
		}
	})
	return p
}

// startBackend serves method on rc with the backend helper: n frames,
// "0" to "n-1".
func startBackend(t *testing.T, rc *roleConn, method string, n int) {
	t.Helper()
	h := func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			for i := range n {
				if !yield(backend.Reply{Payload: []byte(fmt.Sprint(i))}, nil) {
					return
				}
			}
		}
	}
	svc, err := backend.New(rc.Conn, method, h, backend.Options{OnError: func(_ *backend.Request, err error) { t.Errorf("backend: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rc.Flush(); err != nil { // the queue subscription is in place
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
}

// dial connects a client holding session, a member of groups, to e's
// WebSocket listener, closed at cleanup.
func dial(t *testing.T, e *edgeProcess, session string, groups ...string) *client.Conn {
	t.Helper()
	tok, err := token.MintGroups(jwtSecret, session, groups, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	cl, err := client.Dial(ctx, "ws://"+e.addr("websocket")+"/", client.Options{Token: tok})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", e.node, session, err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func recv(t *testing.T, c *client.Conn) client.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	f, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return f
}

// The roles of groups, presence, revocation and session events, on the
// shipped cluster: each does what it is for through the edge binary, which
// answers on the asker's own inbox (membership, presence, kick, broadcast)
// or publishes the events; the server refuses everything else they try,
// and no other role has their rights.
func TestSessionRoles(t *testing.T) {
	c := startCluster(t)
	e1 := c.startEdge(t, "e1", 0)
	e2 := c.startEdge(t, "e2", 1)
	store := openDLQ(t, c.connect(t, "operator", 2))
	t.Run("refused", func(t *testing.T) { sessionRightsRefused(t, c) })
	t.Run("allowed/broadcast to no one", func(t *testing.T) { broadcastParked(t, c, store) })

	events := eventsOf(t, c.connect(t, "events", 2))
	c.interest(t, 1, "evt.push.alice.connected")
	c.interest(t, 0, "evt.push.bob.connected")
	alice := dial(t, e2, "alice", "team")
	bob := dial(t, e1, "bob")
	expectEvent(t, events, "alice", protocol.EventConnected, "e2", "")
	expectEvent(t, events, "bob", protocol.EventConnected, "e1", "")
	t.Run("allowed/presence", func(t *testing.T) { presenceAnswered(t, c) })
	t.Run("allowed/membership", func(t *testing.T) { membershipAnswered(t, c, alice) })
	t.Run("allowed/broadcast", func(t *testing.T) { broadcastDelivered(t, c, alice, bob) })
	t.Run("allowed/kick", func(t *testing.T) { kickAnswered(t, c, alice, events) })

	for _, e := range []*edgeProcess{e1, e2} {
		if v := e.metric(t, "pushfabric_nats_permission_errors_total"); v != "0" {
			t.Errorf("%s: %s permission errors; want 0", e.node, v)
		}
	}
	if letters := countLetters(t, store, ""); letters != 0 {
		t.Errorf("%d dead letters left; want 0", letters)
	}
}

// refusedPublishes are what each role may not publish: another role's
// request, a push, a forged event, a forged dead letter a replay would turn
// into a control request, a broadcast's look-alike (push.*.kick matches
// push.all.kick).
var refusedPublishes = []struct{ role, subject string }{
	{"producer", "push.x.kick"}, {"producer", "push.x.member"}, {"producer", "push.x.presence"},
	{"producer", "push.group.g.presence"}, {"producer", "dlq.push.offline.x.kick"},
	{"producer", "dlq.push.offline.x.member"}, {"producer", "dlq.push.offline.x.presence"},
	{"edge", "push.x.kick"}, {"edge", "push.x.member"}, {"edge", "dlq.push.closed.x.kick"}, {"edge", "push.all.high"},
	{"operator", "push.x.kick"}, {"operator", "push.x.presence"}, {"backend", "push.x.member"},
	{"broadcast", "push.x.kick"}, {"broadcast", "push.group.g.presence"},
	{"membership", "push.x.kick"}, {"membership", "push.x.presence"}, {"membership", "push.group.g.high"},
	{"membership", "push.all.member"}, {"membership", "dlq.push.offline.x.high"},
	{"presence", "push.x.kick"}, {"presence", "push.x.member"}, {"presence", "push.x.high"},
	{"presence", "push.all.high"},
	{"kick", "push.x.presence"}, {"kick", "push.x.member"}, {"kick", "push.x.low"}, {"kick", "push.all.kick"},
	{"events", "evt.push.x.connected"}, {"events", "push.x.kick"}, {"events", "push.x.high"},
}

// refusedSubscriptions are what each role may not read: pushes and
// control, the events (but for the events role), another role's inbox.
var refusedSubscriptions = []struct{ role, subject string }{
	{"membership", "push.>"}, {"presence", "push.>"}, {"kick", "push.>"}, {"events", "push.>"},
	{"membership", "evt.push.>"}, {"presence", "evt.push.>"}, {"kick", "evt.push.>"},
	{"producer", "evt.push.>"}, {"backend", "evt.push.>"},
	{"presence", "_INBOX_kick.>"}, {"kick", "_INBOX_edge.>"}, {"events", "_INBOX_presence.>"},
	{"membership", "_INBOX_producer.>"},
}

// sessionRightsRefused has each role try what it may not: the server
// refuses every one, and nothing refused reaches a subscriber that could
// see it (an edge node's, on the same server).
func sessionRightsRefused(t *testing.T, c *natsCluster) {
	spy := c.connect(t, "edge", 0)
	seen, err := spy.SubscribeSync("push.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	conns := map[string]*roleConn{}
	as := func(role string) *roleConn {
		if conns[role] == nil {
			conns[role] = c.connect(t, role, 0)
		}
		return conns[role]
	}
	for _, r := range refusedPublishes {
		publishRefused(t, as(r.role), r.subject)
	}
	for _, r := range refusedSubscriptions {
		subscribeRefused(t, as(r.role), r.subject)
	}
	if err := spy.Flush(); err != nil { // after anything the server passed on
		t.Fatal(err)
	}
	if n, _, _ := seen.Pending(); n != 0 {
		m, _ := seen.NextMsg(0)
		t.Fatalf("%d refused messages reached an edge's subscription, the first on %s", n, m.Subject)
	}
}

// broadcastParked: a broadcast with no connection anywhere gets "no
// responders", and the broadcaster parks it as an offline dead letter of
// group all, which the operator then purges.
func broadcastParked(t *testing.T, c *natsCluster, store *dlq.Store) {
	p := startProducer(t, c.connect(t, "broadcast", 0))
	ack, err := p.PushGroup(t.Context(), push.AllGroup, push.High, []byte("to no one"), producer.WithID("all-0"))
	if err != nil || !ack.Offline {
		t.Fatalf("broadcast to no one: %+v, %v; want offline", ack, err)
	}
	waitForLetters(t, store, "", 1)
	if n, err := store.Purge(t.Context(), dlq.Filter{}); err != nil || n != 1 {
		t.Fatalf("operator's purge: %d, %v; want the broadcast's letter", n, err)
	}
}

// presenceAnswered: pushctl presence with the presence user's seed finds
// alice on e2 and nobody offline; a group's presence lists its members.
func presenceAnswered(t *testing.T, c *natsCluster) {
	c.interest(t, 0, "push.alice.presence")
	if out, code := c.pushctl(t, "presence", 0, "presence", "alice"); code != 0 || !strings.Contains(out, "alice: online on node e2") {
		t.Fatalf("pushctl presence alice: exit %d\n%s", code, out)
	}
	if out, code := c.pushctl(t, "presence", 0, "presence", "nobody"); code != 1 || !strings.Contains(out, "nobody: offline") {
		t.Fatalf("pushctl presence nobody: exit %d\n%s; want offline, exit 1", code, out)
	}
	c.interest(t, 0, "push.group.team.presence")
	m, err := c.connect(t, "presence", 0).Request("push.group.team.presence", nil, waitLimit)
	if err != nil {
		t.Fatalf("team's presence: %v", err)
	}
	var members []protocol.SessionInfo
	if err := json.Unmarshal(m.Data, &members); err != nil || len(members) != 1 || members[0].Session != "alice" || members[0].Node != "e2" {
		t.Fatalf("team's presence %s (%v); want alice on e2", m.Data, err)
	}
	if out, code := c.pushctl(t, "presence", 0, "presence", "--all"); code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("pushctl presence --all: exit %d\n%s; want alice listed", code, out)
	}
}

// membershipAnswered: the membership user joins alice to room, e2
// answers, and a group push to room then reaches her; a leave (pushctl
// member with the membership user's seed) is answered with her groups
// after it.
func membershipAnswered(t *testing.T, c *natsCluster, alice *client.Conn) {
	rc := c.connect(t, "membership", 0)
	if groups := member(t, rc, "alice", protocol.HeaderJoin, "room"); !slices.Equal(groups, []string{"room", "team"}) {
		t.Fatalf("after the join alice is in %q; want room and team", groups)
	}
	c.interest(t, 0, "push.group.room.high")
	p := startProducer(t, c.connect(t, "producer", 0))
	ack, err := p.PushGroup(t.Context(), "room", push.High, []byte("to the room"))
	if err != nil || ack.Members != 1 {
		t.Fatalf("push to room: %+v, %v; want 1 member", ack, err)
	}
	if f := recv(t, alice); string(f.Payload) != "to the room" {
		t.Fatalf("alice got %q; want the room's push", f.Payload)
	}
	out, code := c.pushctl(t, "membership", 0, "member", "alice", "--leave", "room")
	if code != 0 || out != "alice: groups team (node e2)\n" {
		t.Fatalf("pushctl member alice --leave room: exit %d\n%s; want alice in team alone, from e2", code, out)
	}
}

// member asks the node holding session to change its groups (header
// Push-Join or Push-Leave), and returns its groups after the change,
// sorted.
func member(t *testing.T, rc *roleConn, session, header, groups string) []string {
	t.Helper()
	m := nats.NewMsg(protocol.MemberSubject(protocol.DefaultPrefix, session))
	m.Header.Set(header, groups)
	r, err := rc.RequestMsg(m, waitLimit)
	if err != nil {
		t.Fatalf("%s %s %s: %v", header, session, groups, err)
	}
	var reply protocol.MemberReply
	if err := json.Unmarshal(r.Data, &reply); err != nil || reply.Error != "" || reply.Node != "e2" {
		t.Fatalf("%s %s %s: %s (%v); want e2's answer", header, session, groups, r.Data, err)
	}
	slices.Sort(reply.Groups)
	return reply.Groups
}

// broadcastDelivered: the broadcast user's push reaches every connection,
// and both nodes answer it.
func broadcastDelivered(t *testing.T, c *natsCluster, conns ...*client.Conn) {
	c.routedInterest(t, 2, "push.all.low", 2)
	p := startProducer(t, c.connect(t, "broadcast", 2))
	ack, err := p.PushGroup(t.Context(), push.AllGroup, push.Low, []byte("everyone"))
	if err != nil || ack.Members != len(conns) || len(ack.Nodes) != 2 {
		t.Fatalf("broadcast: %+v, %v; want %d members on 2 nodes", ack, err, len(conns))
	}
	for _, cl := range conns {
		if f := recv(t, cl); string(f.Payload) != "everyone" {
			t.Fatalf("%s got %q; want the broadcast", cl.Session(), f.Payload)
		}
	}
}

// kickAnswered: pushctl kick with the kick user's seed closes alice's
// connection revoked and hears e2's answer; the events user hears her
// disconnect.
func kickAnswered(t *testing.T, c *natsCluster, alice *client.Conn, events chan backend.Event) {
	c.interest(t, 0, "push.alice.kick")
	out, code := c.pushctl(t, "kick", 0, "kick", "alice")
	if code != 0 || !strings.Contains(out, "alice: kicked: node e2 closed its connection (revoked)") {
		t.Fatalf("pushctl kick alice: exit %d\n%s", code, out)
	}
	for { // nothing was queued for her
		if _, err := alice.Recv(t.Context()); err != nil {
			break
		}
	}
	var ce *client.CloseError
	if err := alice.Err(); !errors.As(err, &ce) || ce.Reason != wire.CloseRevoked {
		t.Fatalf("alice's connection ended with %v; want revoked", err)
	}
	expectEvent(t, events, "alice", protocol.EventDisconnected, "e2", string(wire.CloseRevoked))
}

// pushctl runs pushctl's args against server i as role (its seed and
// inbox prefix), and returns its output and exit status.
func (c *natsCluster) pushctl(t *testing.T, role string, i int, args ...string) (string, int) {
	t.Helper()
	args = append(args, "--nats", c.url(i), "--nats-nkey", c.seeds[role], "--nats-inbox-prefix", "_INBOX_"+role)
	out, err := exec.Command(binary(t, "pushctl"), args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	case err != nil:
		t.Fatalf("pushctl %q: %v", args, err)
	}
	return string(out), 0
}

// eventsOf subscribes to every session event through rc, with the
// backend helper.
func eventsOf(t *testing.T, rc *roleConn) chan backend.Event {
	t.Helper()
	ch := make(chan backend.Event, 64)
	sub, err := backend.SessionEvents(rc.Conn, func(e backend.Event) { ch <- e }, backend.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// expectEvent waits for the next event of session (skipping others') and
// checks it.
func expectEvent(t *testing.T, ch chan backend.Event, session, kind, node, reason string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case e := <-ch:
			if e.Session != session {
				continue
			}
			if e.Event != kind || e.Node != node || e.Reason != reason {
				t.Fatalf("event %+v; want %s %s on %s (reason %q)", e, session, kind, node, reason)
			}
			return
		case <-deadline:
			t.Fatalf("no event of %s within %v; want %s", session, waitLimit, kind)
		}
	}
}
