package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// FuzzSessionMessages sends a node the messages anyone allowed on a
// session's subjects may send — P.<session>.ctl, .member, .presence and
// .kick — with the fuzzer's header values, over a real NATS server to a
// real node holding the session, and checks each answer against what
// DESIGN §2 says: a takeover replaces the connection only if it is one
// (Push-Control takeover, another node, a newer start time or, at the same
// time, a greater node name), else the session stays as it was; a
// membership change either applies (the groups after it valid, what it
// joined in them and what it left out) or is refused and changes nothing;
// presence is answered with the connection as it is, whatever the
// request carried; a kick closes the connection. kind picks the subject,
// a, b and c are the header values.
func FuzzSessionMessages(f *testing.F) {
	for _, s := range [][3]string{{"takeover", "zz-node", "9223372036854775807"}, {"takeover", "", "1"}, {"takeover", "other", "x"},
		{"bogus", "other", "1"}, {"takeover", "a", "-9223372036854775808"}, {"takeover", "other", "+1"}} {
		f.Add(uint8(0), s[0], s[1], s[2])
	}
	for _, s := range [][2]string{{"g1, g2", ""}, {"g1", "g1"}, {"bad!name", ""}, {strings.Repeat("g,", 40), ""}, {"all", ""}, {"", "g1"}} {
		f.Add(uint8(1), s[0], s[1], "")
	}
	f.Add(uint8(2), "takeover", "x", "")
	f.Add(uint8(3), "", "", "")
	h := startHeld(f)
	f.Fuzz(func(t *testing.T, kind uint8, a, b, c string) {
		if !headerValue(a) || !headerValue(b) || !headerValue(c) {
			return // NATS trims header values, and they cannot hold line breaks
		}
		switch kind % 4 {
		case 0:
			h.control(t, a, b, c)
		case 1:
			h.member(t, a, b)
		case 2:
			h.presence(t, nats.Header{protocol.HeaderControl: {a}, protocol.HeaderJoin: {b}})
		default:
			h.kick(t)
		}
	})
}

// headerValue reports whether v reaches a node as it was sent: printable,
// without surrounding blanks.
func headerValue(v string) bool {
	return strings.TrimSpace(v) == v && !strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) })
}

// held is a node holding session s1, and a NATS connection to ask it.
type held struct {
	srv  *edge.Server
	nc   *nats.Conn
	sess *session
	node string
}

const heldSession = "s1"

func startHeld(t testing.TB) *held {
	s := natstest.Server(t)
	if _, err := dlq.EnsureStream(t.Context(), natstest.JetStream(t, s), protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err) // a forged control message is dead-lettered invalid
	}
	srv, _ := startNode(t, s.ClientURL())
	h := &held{srv: srv, nc: natstest.Connect(t, s), node: push.DefaultIdentity().Node}
	h.sess = connectSession(t, srv, heldSession)
	t.Cleanup(func() { h.sess.close() })
	return h
}

// conn is the node's connection of the session.
func (h *held) conn(t *testing.T) *edge.Conn {
	t.Helper()
	c := h.srv.Registry().Get(heldSession)
	if c == nil {
		t.Fatal("the node does not hold the session")
	}
	return c
}

// control publishes a takeover announcement of the fuzzer's and checks
// that the connection was replaced exactly when the announcement wins.
func (h *held) control(t *testing.T, control, node, conn string) {
	mine := h.conn(t).Started().UnixNano()
	m := &nats.Msg{Subject: protocol.PushSubject(protocol.DefaultPrefix, heldSession, protocol.Control), Header: nats.Header{
		protocol.HeaderControl: {control}, protocol.HeaderNode: {node}, protocol.HeaderConn: {conn}}}
	if err := h.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	started, err := strconv.ParseInt(conn, 10, 64)
	wins := control == protocol.ControlTakeover && err == nil && node != "" && node != h.node &&
		(started > mine || started == mine && node > h.node)
	if wins {
		h.redial(t, wire.CloseReplaced)
		return
	}
	if info := h.presence(t, nil); info.Since.UnixNano() != mine {
		t.Fatalf("takeover %q by %q at %q (not a newer one) replaced the connection", control, node, conn)
	}
}

// member asks for a membership change and checks the answer against the
// groups before and after.
func (h *held) member(t *testing.T, join, leave string) {
	before := h.conn(t).Groups()
	m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, heldSession), Header: nats.Header{
		protocol.HeaderJoin: {join}, protocol.HeaderLeave: {leave}}}
	reply, err := h.nc.RequestMsg(m, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := protocol.ParseMemberReply(reply)
	after := h.conn(t).Groups()
	switch {
	case r.Error != "" && !slices.Equal(before, after):
		t.Fatalf("refused (%s), yet the groups went from %q to %q", r.Error, before, after)
	case r.Error == "" && (push.CheckGroups(after) != nil || !slices.Equal(sorted(r.Groups), sorted(after))):
		t.Fatalf("groups %q after join %q, leave %q; answered %q", after, join, leave, r.Groups)
	case r.Error == "" && !applied(before, after, join, leave):
		t.Fatalf("groups %q, then %q after join %q, leave %q", before, after, join, leave)
	}
	h.leaveAll(t)
}

// applied reports whether after is before with leave's names taken out
// and join's put in, a name in both either way.
func applied(before, after []string, join, leave string) bool {
	joined, left := protocol.SplitGroups(join), protocol.SplitGroups(leave)
	for _, g := range joined {
		if !slices.Contains(after, g) && !slices.Contains(left, g) {
			return false
		}
	}
	for _, g := range left {
		if slices.Contains(after, g) && !slices.Contains(joined, g) {
			return false
		}
	}
	for _, g := range after {
		if !slices.Contains(before, g) && !slices.Contains(joined, g) {
			return false
		}
	}
	return true
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// leaveAll takes the session out of every group, for the next input.
func (h *held) leaveAll(t *testing.T) {
	groups := h.conn(t).Groups()
	if len(groups) == 0 {
		return
	}
	m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, heldSession), Header: nats.Header{
		protocol.HeaderLeave: {strings.Join(groups, ",")}}}
	if _, err := h.nc.RequestMsg(m, testTimeout); err != nil {
		t.Fatal(err)
	}
}

// presence asks where the session is, with header, and checks that this
// node answers with its connection.
func (h *held) presence(t *testing.T, header nats.Header) protocol.SessionInfo {
	m := &nats.Msg{Subject: protocol.PushSubject(protocol.DefaultPrefix, heldSession, protocol.Presence), Header: header}
	reply, err := h.nc.RequestMsg(m, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var info protocol.SessionInfo
	if err := json.Unmarshal(reply.Data, &info); err != nil || info.Session != heldSession || info.Node != h.node {
		t.Fatalf("presence answered %q (%v)", reply.Data, err)
	}
	return info
}

// kick revokes the session and checks the answer.
func (h *held) kick(t *testing.T) {
	reply, err := h.nc.Request(protocol.PushSubject(protocol.DefaultPrefix, heldSession, protocol.Kick), nil, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var r protocol.KickResult
	if err := json.Unmarshal(reply.Data, &r); err != nil || !r.Closed || r.Node != h.node {
		t.Fatalf("kick answered %q (%v)", reply.Data, err)
	}
	h.redial(t, wire.CloseRevoked)
}

// redial waits for the client to be closed with reason, and connects the
// session again.
func (h *held) redial(t *testing.T, reason wire.CloseReason) {
	select {
	case <-h.sess.c.Done():
	case <-time.After(testTimeout):
		t.Fatalf("the connection was not closed %s", reason)
	}
	var closed *client.CloseError
	if err := h.sess.c.Err(); !errors.As(err, &closed) || closed.Reason != reason {
		t.Fatalf("the connection ended with %v; want close reason %s", err, reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, "tcp://"+h.sess.ln.Addr().String(), client.Options{Session: heldSession})
	if err != nil {
		t.Fatal(err)
	}
	h.sess.c = c
	if h.srv.Registry().Get(heldSession) == nil {
		t.Fatal("the node welcomed the session without holding it")
	}
}

// testTimeout bounds every wait; reaching it is a failure.
const testTimeout = 20 * time.Second
