package backend_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// ChangeGroups sends the joins and leaves as the node reads them, from
// the caller's own inbox prefix, and returns the node's answer; a node's
// refusal is ErrRefused with the reply; no node is ErrOffline; a node
// that never answers is ErrNoAnswer once ctx ends, one answering what is
// not a membership reply an error; a bad name or prefix is refused before
// anything is sent.
func TestChangeGroupsRequest(t *testing.T) {
	s := natstest.Server(t)
	nodes := natstest.Connect(t, s)
	nc := natstest.Connect(t, s, nats.CustomInboxPrefix("_INBOX_membership"))
	asked := make(chan *nats.Msg, 8)
	sub, err := nodes.Subscribe("pf.*.member", func(m *nats.Msg) {
		asked <- m
		r := protocol.MemberReply{Session: strings.Split(m.Subject, ".")[1], Node: "edge1", Groups: []string{"room-1", "user-alice"}}
		switch {
		case strings.HasPrefix(m.Subject, "pf.mute."):
			return
		case strings.HasPrefix(m.Subject, "pf.old."): // a node that takes it for a push
			_ = m.Respond([]byte(`{"status":"enqueued","node":"edge0"}`))
			return
		case m.Header.Get(protocol.HeaderJoin) == "full":
			r.Error = "33 groups: at most 32"
		}
		_ = nodes.PublishMsg(r.Msg(m.Reply))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nodes.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts := backend.MemberOptions{Prefix: "pf"}

	r, err := backend.ChangeGroups(ctx, nc, "alice", []string{"room-1", "user-alice"}, []string{"old"}, opts)
	if err != nil || r.Node != "edge1" || strings.Join(r.Groups, ",") != "room-1,user-alice" {
		t.Fatalf("join: %+v, %v; want room-1,user-alice from edge1", r, err)
	}
	m := <-asked
	if m.Subject != "pf.alice.member" || m.Header.Get(protocol.HeaderJoin) != "room-1,user-alice" ||
		m.Header.Get(protocol.HeaderLeave) != "old" || !strings.HasPrefix(m.Reply, "_INBOX_membership.") {
		t.Fatalf("asked %s %v from %s; want pf.alice.member, join room-1,user-alice, leave old, from _INBOX_membership", m.Subject, m.Header, m.Reply)
	}
	if _, err := backend.ChangeGroups(ctx, nc, "alice", nil, nil, opts); err != nil {
		t.Fatal(err)
	}
	if m := <-asked; len(m.Header) != 0 {
		t.Fatalf("a request without changes carried %v; want no headers", m.Header)
	}

	r, err = backend.ChangeGroups(ctx, nc, "alice", []string{"full"}, nil, opts)
	if !errors.Is(err, backend.ErrRefused) || !strings.Contains(err.Error(), "by node edge1: 33 groups: at most 32") || len(r.Groups) != 2 {
		t.Fatalf("refused: %+v, %v; want ErrRefused saying the node's reason, with the groups", r, err)
	}
	<-asked
	if _, err = backend.ChangeGroups(ctx, nc, "bob", []string{"g"}, nil, backend.MemberOptions{}); !errors.Is(err, backend.ErrOffline) {
		t.Fatalf("no node: %v; want ErrOffline", err)
	}
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	if _, err = backend.ChangeGroups(short, nc, "mute", []string{"g"}, nil, opts); !errors.Is(err, backend.ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer: %v; want ErrNoAnswer and the deadline", err)
	}
	<-asked
	if _, err = backend.ChangeGroups(ctx, nc, "old", []string{"g"}, nil, opts); err == nil || !strings.Contains(err.Error(), "not a membership reply") {
		t.Fatalf("a push's ack for an answer: %v; want not a membership reply", err)
	}
	<-asked

	for _, bad := range []struct {
		session     string
		join, leave []string
		opts        backend.MemberOptions
		want        string
	}{
		{"a.b", nil, nil, opts, `session "a.b"`},
		{"all", []string{"g"}, nil, opts, `session "all": a reserved name`},
		{"alice", []string{"ok", "a,b"}, nil, opts, `group "a,b"`},
		{"alice", nil, []string{push.AllGroup}, opts, `group "all": reserved`},
		{"alice", []string{strings.Repeat("x", 129)}, nil, opts, "want 1-128 characters"},
		{"alice", []string{"g"}, nil, backend.MemberOptions{Prefix: "p.q"}, `prefix "p.q"`},
	} {
		if _, err := backend.ChangeGroups(ctx, nc, bad.session, bad.join, bad.leave, bad.opts); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ChangeGroups(%q, %q, %q): %v; want an error saying %s", bad.session, bad.join, bad.leave, err, bad.want)
		}
	}
	if _, err := backend.ChangeGroups(ctx, nil, "alice", nil, nil, opts); err == nil {
		t.Error("no connection accepted")
	}
	if _, err := backend.ChangeGroups(ctx, nc, "last", nil, nil, opts); err != nil {
		t.Fatal(err)
	}
	if m := <-asked; m.Subject != "pf.last.member" { // in order: nothing was sent before it
		t.Fatalf("a refused change was sent: %s %v", m.Subject, m.Header)
	}
}
