package main

import (
	"io"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// FuzzPushArgs: pushctl push's command line, whatever its arguments and
// flag values, is refused before anything is sent, or names a valid
// session (or group), has headers of key=value, and builds a push whose
// headers say what the flags said.
func FuzzPushArgs(f *testing.F) {
	for _, c := range [][5]string{{"alice", "hello", "traceparent=00-x", "id1", "text/plain"}, {"all", "p", "k=v", "", ""},
		{"group", "p", "=v", "i", ""}, {"a.b", "p", "k=v", "i", ""}, {"-x", "p", "k=", "i", ""}, {"alice", "--", "Push-Reply=victim", "i", "ct"},
		{"alice", "-", "Nats-Msg-Id=x", strings.Repeat("i", 300), ""}, {"--group=g1", "p", "k=v", "i", ""}, {"--all", "p", "k=v", "", ""}} {
		f.Add(c[0], c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, session, payload, header, id, ct string) {
		var m commands
		p, err := newParser(&m, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse([]string{"push", session, payload, "--header", header, "--id", id, "--content-type", ct}); err != nil {
			return
		}
		c := &m.Push
		if c.Group == "" && !c.All && push.CheckSession(c.Session) != nil || c.Group != "" && push.CheckGroup(c.Group) != nil {
			t.Fatalf("accepted session %q, group %q", c.Session, c.Group)
		}
		checkPushHeaders(t, c)
	})
}

// checkPushHeaders builds the push c would send and holds its headers to
// the flags: the id, the content type, each --header, the ack.
func checkPushHeaders(t *testing.T, c *pushCmd) {
	t.Helper()
	m := &nats.Msg{Header: nats.Header{}}
	for _, o := range c.options() {
		if err := o(m); err != nil {
			return // refused by the producer, before anything is sent
		}
	}
	want := map[string]string{protocol.HeaderAck: c.Ack}
	if c.ID != "" {
		want[protocol.HeaderID] = c.ID
	}
	if c.ContentType != "" {
		want[protocol.HeaderContentType] = c.ContentType
	}
	for _, h := range c.Header {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			t.Fatalf("accepted --header %q", h)
		}
		want[k] = v
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q; want %q (flags %+v)", k, got, v, c)
		}
	}
}
