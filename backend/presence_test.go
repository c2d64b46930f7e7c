package backend_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// answerWith subscribes a stand-in for an edge node that answers every
// request on subject with body (nil: it stays silent).
func answerWith(t *testing.T, nc *nats.Conn, subject, body string, silent bool) {
	t.Helper()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if !silent {
			_ = m.Respond([]byte(body))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Every node's answer is gathered, the members sorted by session with
// their nodes listed; an answer that does not decode is reported beside
// the others; the request goes out from the caller's own inbox prefix.
func TestGroupPresenceGathers(t *testing.T) {
	s := natstest.Server(t)
	nodes := natstest.Connect(t, s)
	answerWith(t, nodes, "pf.group.room.presence", `[{"session":"carol","node":"edge2"},{"session":"alice","node":"edge2"}]`, false)
	answerWith(t, nodes, "pf.group.room.presence", `[{"session":"bob","node":"edge1","groups":["room"]}]`, false)
	answerWith(t, nodes, "pf.group.room.presence", `[]`, false)
	answerWith(t, nodes, "pf.group.room.presence", `{not a list`, false)
	nc := natstest.Connect(t, s, nats.CustomInboxPrefix("_INBOX_presence"))
	seen := make(chan string, 8)
	spy, err := nodes.Subscribe("pf.group.room.presence", func(m *nats.Msg) { seen <- m.Reply })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = spy.Unsubscribe() })
	if err := nodes.Flush(); err != nil {
		t.Fatal(err)
	}

	g, err := backend.GroupPresence(t.Context(), nc, "room", backend.PresenceOptions{Prefix: "pf", Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, m := range g.Members {
		sessions = append(sessions, m.Session+"@"+m.Node)
	}
	if got := strings.Join(sessions, " "); got != "alice@edge2 bob@edge1 carol@edge2" {
		t.Fatalf("members %s; want alice@edge2 bob@edge1 carol@edge2", got)
	}
	if got := strings.Join(g.Nodes, ","); got != "edge1,edge2" || g.Answers != 4 || g.Offline || g.Group != "room" {
		t.Fatalf("nodes %s, %d answers, offline %v, group %s; want edge1,edge2, 4 answers (one empty, one invalid), online, room",
			got, g.Answers, g.Offline, g.Group)
	}
	if len(g.Invalid) != 1 || !strings.Contains(g.Invalid[0].Error(), "not a list") {
		t.Fatalf("invalid answers %v; want the one that is not a list", g.Invalid)
	}
	select {
	case reply := <-seen:
		if !strings.HasPrefix(reply, "_INBOX_presence.") {
			t.Fatalf("asked from %q; want an inbox under _INBOX_presence", reply)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the nodes")
	}
}

// No member anywhere: "no responders" ends the request at once, and
// every node answering an empty list is offline too; interest without an
// answer is ErrNoAnswer; the broadcast group asks <prefix>.all.presence.
func TestGroupPresenceOffline(t *testing.T) {
	s := natstest.Server(t)
	nodes, nc := natstest.Connect(t, s), natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	g, err := backend.GroupPresence(ctx, nc, "nobody-here", backend.PresenceOptions{Window: time.Hour})
	if err != nil || !g.Offline || g.Answers != 0 || len(g.Members) != 0 {
		t.Fatalf("group without members: %+v, %v; want offline at once (no responders)", g, err)
	}

	answerWith(t, nodes, "push.group.emptied.presence", `[]`, false)
	answerWith(t, nodes, "push.group.emptied.presence", `[]`, false)
	g, err = backend.GroupPresence(ctx, nc, "emptied", backend.PresenceOptions{Window: 200 * time.Millisecond})
	if err != nil || !g.Offline || g.Answers != 2 {
		t.Fatalf("two nodes with none left: %+v, %v; want offline, 2 answers", g, err)
	}

	answerWith(t, nodes, "push.group.mute.presence", "", true)
	if _, err = backend.GroupPresence(ctx, nc, "mute", backend.PresenceOptions{Window: 200 * time.Millisecond}); !errors.Is(err, backend.ErrNoAnswer) {
		t.Fatalf("no node answering: %v; want ErrNoAnswer", err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err = backend.GroupPresence(done, nc, "mute", backend.PresenceOptions{}); !errors.Is(err, backend.ErrNoAnswer) || !errors.Is(err, context.Canceled) {
		t.Fatalf("asking with a context already done: %v; want ErrNoAnswer and the context's error", err)
	}

	answerWith(t, nodes, "push.all.presence", `[{"session":"x","node":"edge1"}]`, false)
	g, err = backend.GroupPresence(ctx, nc, push.AllGroup, backend.PresenceOptions{Window: 200 * time.Millisecond})
	if err != nil || len(g.Members) != 1 || g.Members[0].Session != "x" {
		t.Fatalf("presence of every connection: %+v, %v; want x", g, err)
	}
}

// A group name breaking the rule, or a prefix that is not one token, is
// refused before anything is sent.
func TestGroupPresenceRefusesBadNames(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	for _, c := range []struct {
		group, prefix string
	}{{"a.b", ""}, {"", ""}, {strings.Repeat("x", 129), ""}, {"ok", "a.b"}} {
		if _, err := backend.GroupPresence(t.Context(), nc, c.group, backend.PresenceOptions{Prefix: c.prefix}); err == nil || errors.Is(err, backend.ErrNoAnswer) {
			t.Errorf("group %q, prefix %q: %v; want refused", c.group, c.prefix, err)
		}
	}
	if _, err := backend.GroupPresence(t.Context(), nil, "ok", backend.PresenceOptions{}); err == nil {
		t.Error("no connection accepted")
	}
	if _, err := backend.GroupPresence(t.Context(), nc, "a.b", backend.PresenceOptions{}); !errors.Is(err, push.ErrInvalidName) {
		t.Errorf("group a.b: %v; want push.ErrInvalidName", err)
	}
}
