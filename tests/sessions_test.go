package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// presence asks where session is; ok is false for "no responders"
// (offline).
func presence(t testing.TB, nc *nats.Conn, session string) (info protocol.SessionInfo, ok bool) {
	t.Helper()
	m, err := nc.RequestWithContext(timeout(t), protocol.PushSubject(protocol.DefaultPrefix, session, protocol.Presence), nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return info, false
	}
	if err != nil {
		t.Fatalf("presence %s: %v", session, err)
	}
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatalf("presence %s: %q: %v", session, m.Data, err)
	}
	return info, true
}

// presenceSoon is presence for a moment when a node may just have let go
// of session: a request reaching only that node, before NATS knows of the
// node that took the session, goes unanswered (docs/sessions.md: ask
// again), so a try waits a few seconds, and ok is false for that too.
func presenceSoon(t testing.TB, nc *nats.Conn, session string) (info protocol.SessionInfo, ok bool) {
	t.Helper()
	m, err := nc.Request(protocol.PushSubject(protocol.DefaultPrefix, session, protocol.Presence), nil, 3*time.Second)
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout):
		return info, false
	case err != nil:
		t.Fatalf("presence %s: %v", session, err)
	}
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatalf("presence %s: %q: %v", session, m.Data, err)
	}
	return info, true
}

// kick revokes session; ok is false for "no responders" (offline).
func kick(t testing.TB, nc *nats.Conn, session string) (res protocol.KickResult, ok bool) {
	t.Helper()
	m, err := nc.RequestWithContext(timeout(t), protocol.PushSubject(protocol.DefaultPrefix, session, protocol.Kick), nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return res, false
	}
	if err != nil {
		t.Fatalf("kick %s: %v", session, err)
	}
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatalf("kick %s: %q: %v", session, m.Data, err)
	}
	return res, true
}

// sessionEvents subscribes to every session event through nc, with the
// backend helper.
func sessionEvents(t testing.TB, nc *nats.Conn) chan backend.Event {
	t.Helper()
	ch := make(chan backend.Event, 64)
	sub, err := backend.SessionEvents(nc, func(e backend.Event) { ch <- e }, backend.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// nextEvent is the next session event of session (others are skipped).
func nextEvent(t testing.TB, ch chan backend.Event, session string) backend.Event {
	t.Helper()
	for {
		select {
		case e := <-ch:
			if e.Session == session {
				return e
			}
		case <-timeout(t).Done():
			t.Fatalf("no session event for %s", session)
		}
	}
}

// Presence across a three-server cluster: the node holding the session
// answers, from any server, with where and how it is connected; a session
// no node holds is offline (no responders); after a takeover the new node
// answers and the old one never does. The session events say the same.
func TestPresenceAcrossTheCluster(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	edge1 := startEdge(t, edgeConfig(t, servers[0], "edge1"))
	edge2 := startEdge(t, edgeConfig(t, servers[1], "edge2"))
	asker := natstest.Connect(t, servers[2])
	events := sessionEvents(t, asker)
	waitForInterest(t, servers, protocol.EventWildcard(protocol.DefaultPrefix))

	before := time.Now()
	old := dial(t, edge2.tcp(), "alice", client.Options{})
	waitForInterest(t, servers, "push.alice.presence")
	info, ok := presence(t, asker, "alice")
	switch {
	case !ok:
		t.Fatal("alice offline; want online on edge2")
	case info.Node != "edge2" || info.Session != "alice" || info.Transport != "tcp":
		t.Fatalf("presence %+v; want alice on edge2 over tcp", info)
	case info.Since.Before(before.Add(-time.Second)) || info.Since.After(time.Now()):
		t.Fatalf("since %s; want about %s", info.Since, before)
	case !strings.HasPrefix(info.Remote, "127.0.0.1:"):
		t.Fatalf("remote %q; want the client's loopback address", info.Remote)
	}
	if e := nextEvent(t, events, "alice"); e.Event != protocol.EventConnected || e.Node != "edge2" || !e.Since.Equal(info.Since) {
		t.Fatalf("event %+v; want alice connected on edge2 since %s", e, info.Since)
	}
	if _, ok := presence(t, asker, "nobody"); ok {
		t.Fatal("nobody is online; want offline")
	}

	// The takeover: edge1 answers as soon as NATS routes the request to
	// it; edge2, replaced, never answers again (a request that reaches
	// only edge2 goes unanswered, and is asked again).
	answered := edge2.Dispatcher.Stats().Presences
	dial(t, edge1.ws(), "alice", client.Options{})
	endedReplaced(t, old)
	waitFor(t, "edge1 to answer alice's presence", func() bool {
		info, ok := presenceSoon(t, asker, "alice")
		if ok && info.Node != "edge1" {
			t.Fatalf("after the takeover %s answered; want edge1", info.Node)
		}
		return ok && info.Transport == "websocket"
	})
	if n := edge2.Dispatcher.Stats().Presences; n != answered {
		t.Fatalf("edge2 answered %d presence requests after the takeover; want none", n-answered)
	}
	got := map[string]backend.Event{}
	for len(got) < 2 {
		e := nextEvent(t, events, "alice")
		got[e.Event+"@"+e.Node] = e
	}
	if e, ok := got["disconnected@edge2"]; !ok || e.Reason != string(wire.CloseReplaced) {
		t.Fatalf("events %+v; want alice disconnected from edge2, replaced", got)
	}
	if _, ok := got["connected@edge1"]; !ok {
		t.Fatalf("events %+v; want alice connected on edge1", got)
	}
}

// A kick closes the session's connection with reason revoked: the Go
// client's Session stops and does not reconnect; the pushes queued at that
// moment are dead-lettered closed, a receipt-push among them, handed over
// to no one, unconfirmed; every push is delivered or dead-lettered. A
// second kick, and a presence request, find the session offline. The
// disconnected event carries the reason.
func TestKickRevokesTheSession(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "edge1")
	cfg.Edge.Rate, cfg.Edge.Burst = 1, 1 // pushes pile up in the queue
	node := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	events := sessionEvents(t, nc)
	sess, err := client.Connect(timeout(t), node.tcp(), client.Options{Token: mint(t, "carol")}, client.ReconnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	if e := nextEvent(t, events, "carol"); e.Event != protocol.EventConnected {
		t.Fatalf("event %+v; want connected", e)
	}

	const n = 10
	var ids []string
	for i := range n {
		id := fmt.Sprintf("k%d", i)
		if ack := request(t, nc, pushMsg("carol", "low", id, "")); ack.Status != protocol.StatusEnqueued {
			t.Fatalf("push %s: %+v", id, ack)
		}
		ids = append(ids, id)
	}
	receiptAck := receiptPush(t, nc, "carol", "r1")
	ids = append(ids, "r1")
	waitFor(t, "the pushes queued", func() bool { info, _ := presence(t, nc, "carol"); return info.Queued.Low+info.Queued.High >= n-2 })

	res, ok := kick(t, nc, "carol")
	if !ok || !res.Closed || res.Node != "edge1" {
		t.Fatalf("kick: %+v (answered %v); want closed by edge1", res, ok)
	}
	delivered := map[string]bool{}
	for f, err := sess.Recv(timeout(t)); err == nil; f, err = sess.Recv(timeout(t)) {
		delivered[f.ID] = true
	}
	<-sess.Done()
	if !isClose(sess.Err(), wire.CloseRevoked) {
		t.Fatalf("session ended with %v; want revoked, for good", sess.Err())
	}
	if c := node.Server.Stats().Connects; c != 1 {
		t.Fatalf("%d connects; want 1: the client does not reconnect after revoked", c)
	}
	if e := nextEvent(t, events, "carol"); e.Event != protocol.EventDisconnected || e.Reason != string(wire.CloseRevoked) {
		t.Fatalf("event %+v; want disconnected, revoked", e)
	}
	if a := <-receiptAck; a.Status != protocol.StatusDead || a.Reason != "unconfirmed" {
		t.Fatalf("the receipt-push's final ack %+v; want dead, unconfirmed", a)
	}
	if _, ok := kick(t, nc, "carol"); ok {
		t.Fatal("a second kick was answered; want offline")
	}
	if _, ok := presence(t, nc, "carol"); ok {
		t.Fatal("carol online after the kick; want offline")
	}
	accountKicked(t, s, ids, delivered)
}

// receiptPush publishes a low Push-Ack: received push and returns its
// final ack.
func receiptPush(t testing.TB, nc *nats.Conn, session, id string) chan protocol.Ack {
	t.Helper()
	inbox := nc.NewRespInbox()
	acks := make(chan protocol.Ack, 2)
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		if a, err := protocol.ParseAck(m); err == nil {
			acks <- a
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	m := pushMsg(session, "low", id, "")
	m.Reply = inbox
	m.Header.Set(protocol.HeaderAck, protocol.AckReceived)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	return acks
}

// accountKicked checks that each of ids was delivered or dead-lettered,
// not both, and that some were dead-lettered closed, r1 unconfirmed.
func accountKicked(t testing.TB, srv *server.Server, ids []string, delivered map[string]bool) {
	t.Helper()
	var reasons map[string]string
	waitFor(t, "every undelivered push dead-lettered", func() bool {
		reasons = map[string]string{}
		for _, dl := range deadLetters(t, srv) {
			reasons[dl.Header.Get(protocol.HeaderID)] = dl.Header.Get(protocol.HeaderReason)
		}
		return len(reasons)+len(delivered) >= len(ids)
	})
	closed := 0
	for _, id := range ids {
		r, dead := reasons[id]
		switch {
		case dead == delivered[id]:
			t.Fatalf("push %s: delivered %v, dead-lettered %q: want exactly one", id, delivered[id], r)
		case id == "r1" && dead && r != "unconfirmed":
			t.Fatalf("receipt-push dead-lettered %s; want unconfirmed", r)
		case r == "closed":
			closed++
		}
	}
	if closed == 0 {
		t.Fatalf("no push dead-lettered closed (%v); want those queued at the kick", reasons)
	}
}

// The admin listener's GET /sessions lists what the node holds.
func TestAdminSessions(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	dial(t, node.tcp(), "dave", client.Options{})
	dial(t, node.ws(), "erin", client.Options{})
	resp, err := http.Get(fmt.Sprintf("http://%s/sessions", node.Addr("admin")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []protocol.SessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Session != "dave" || list[0].Transport != "tcp" || list[1].Session != "erin" ||
		list[1].Transport != "websocket" || list[0].Node != "edge1" || list[0].Since.IsZero() || list[0].Remote == "" {
		t.Fatalf("/sessions: %+v; want dave over tcp and erin over websocket on edge1", list)
	}
}

// Presence and kick requests carrying what no asker needs (headers the
// edge reads on pushes, set badly; a body) are answered as any other; one
// without a reply subject is not answered, and a kick without one still
// kicks. Nothing panics and no dead letter is written.
func TestForgedSessionRequests(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	nc := natstest.Connect(t, s)
	c := dial(t, node.tcp(), "frank", client.Options{})
	subject := protocol.PushSubject(protocol.DefaultPrefix, "frank", protocol.Presence)
	forged := &nats.Msg{Subject: subject, Data: []byte("\x00{not json"), Header: nats.Header{
		protocol.HeaderAck: []string{"bogus"}, protocol.HeaderExpires: []string{"yesterday"}, protocol.HeaderReply: []string{"_INBOX.x"},
	}}
	reply, err := nc.RequestMsgWithContext(timeout(t), forged)
	if err != nil {
		t.Fatalf("forged presence: %v", err)
	}
	var info protocol.SessionInfo
	if err := json.Unmarshal(reply.Data, &info); err != nil || info.Session != "frank" {
		t.Fatalf("forged presence answered %q (%v); want frank's presence", reply.Data, err)
	}
	if err := nc.Publish(subject, nil); err != nil { // no reply subject: nothing to answer
		t.Fatal(err)
	}
	forged.Subject = protocol.PushSubject(protocol.DefaultPrefix, "frank", protocol.Kick)
	forged.Reply = ""
	if err := nc.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, c)
	if !isClose(c.Err(), wire.CloseRevoked) {
		t.Fatalf("connection ended with %v; want revoked", c.Err())
	}
	node.shutdown(t)
	if dls := deadLetters(t, s); len(dls) != 0 {
		t.Fatalf("%d dead letters; want none", len(dls))
	}
}

// A node with another subject prefix answers presence and kicks, and
// publishes its events, under that prefix only.
func TestSessionsUnderTheNodesPrefix(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "edge1")
	cfg.Identity.Prefix = "pf"
	node := startEdge(t, cfg)
	nc := natstest.Connect(t, s)
	events := make(chan backend.Event, 8)
	sub, err := backend.SessionEvents(nc, func(e backend.Event) { events <- e }, backend.EventOptions{Prefix: "pf"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	stray := sessionEvents(t, nc) // under push: hears nothing
	c := dial(t, node.tcp(), "heidi", client.Options{})
	if e := nextEvent(t, events, "heidi"); e.Event != protocol.EventConnected || e.Node != "edge1" {
		t.Fatalf("event %+v; want heidi connected on edge1", e)
	}
	if _, ok := presence(t, nc, "heidi"); ok {
		t.Fatal("presence under push answered for a node under pf")
	}
	m, err := nc.RequestWithContext(timeout(t), protocol.PushSubject("pf", "heidi", protocol.Kick), nil)
	if err != nil || !strings.Contains(string(m.Data), `"closed":true`) {
		t.Fatalf("kick under pf: %v %v", m, err)
	}
	waitEnded(t, c)
	if e := nextEvent(t, events, "heidi"); e.Event != protocol.EventDisconnected || e.Reason != string(wire.CloseRevoked) {
		t.Fatalf("event %+v; want heidi disconnected, revoked", e)
	}
	if len(stray) != 0 {
		t.Fatalf("an event under push: %+v", <-stray)
	}
}

// Once a kick is answered the node has let go of the session: a kick or a
// presence request sent right after the answer finds it offline (no
// responders), rather than reaching a subscription still draining on the
// node, which no longer answers for it.
func TestKickAnsweredOnceTheNodeLetGo(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	nc := natstest.Connect(t, s)
	for i := range 5 {
		session := fmt.Sprintf("gone%d", i)
		sess, err := client.Connect(timeout(t), node.tcp(), client.Options{Token: mint(t, session)}, client.ReconnectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sess.Close() })
		if res, ok := kick(t, nc, session); !ok || !res.Closed {
			t.Fatalf("kick %s: %+v (answered %v); want closed", session, res, ok)
		}
		if _, ok := kick(t, nc, session); ok {
			t.Fatalf("a second kick of %s was answered; want offline", session)
		}
		if _, ok := presence(t, nc, session); ok {
			t.Fatalf("%s online after the kick; want offline", session)
		}
		<-sess.Done()
	}
}
