package tests

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// manyGroups is n group names: m0, m1, ….
func manyGroups(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "m" + strconv.Itoa(i)
	}
	return names
}

// backend.ChangeGroups against a real node: a join is in place when it
// returns (a group push published at once reaches the session), a leave
// too (the next push to the group has no one to go to); a session no
// node holds is ErrOffline; too many groups is refused by the node, a bad
// name before anything is sent, and neither changes anything.
func TestChangeGroupsOnEdge(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	alice := dialGroups(t, node.tcp(), "alice", "user-alice")
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")
	opts := backend.MemberOptions{}

	r, err := backend.ChangeGroups(timeout(t), nc, "alice", []string{"room-1"}, nil, opts)
	if err != nil || r.Session != "alice" || r.Node != "edge1" || strings.Join(r.Groups, ",") != "room-1,user-alice" {
		t.Fatalf("join room-1: %+v, %v; want room-1,user-alice from edge1", r, err)
	}
	if ack, err := p.PushGroup(timeout(t), "room-1", push.High, nil, producer.WithID("r1")); err != nil || ack.Members != 1 {
		t.Fatalf("push to room-1 right after the join: %+v, %v; want 1 member", ack, err)
	}
	if f := recv(t, alice); f.ID != "r1" {
		t.Fatalf("alice got %s; want r1", f.ID)
	}

	r, err = backend.ChangeGroups(timeout(t), nc, "alice", nil, []string{"room-1"}, opts)
	if err != nil || strings.Join(r.Groups, ",") != "user-alice" {
		t.Fatalf("leave room-1: %+v, %v; want user-alice", r, err)
	}
	if ack, err := p.PushGroup(timeout(t), "room-1", push.High, nil, producer.WithID("r2")); err != nil || !ack.Offline {
		t.Fatalf("push to room-1 right after the leave: %+v, %v; want offline (no member)", ack, err)
	}
	if ack, err := p.PushGroup(timeout(t), "user-alice", push.High, nil, producer.WithID("u1")); err != nil || ack.Members != 1 {
		t.Fatalf("push to user-alice: %+v, %v; want 1 member", ack, err)
	}
	if f := recv(t, alice); f.ID != "u1" {
		t.Fatalf("alice got %s after leaving room-1; want u1", f.ID)
	}

	if _, err = backend.ChangeGroups(timeout(t), nc, "nobody", []string{"room-1"}, nil, opts); !errors.Is(err, backend.ErrOffline) {
		t.Fatalf("join for a session no node holds: %v; want ErrOffline", err)
	}
	r, err = backend.ChangeGroups(timeout(t), nc, "alice", manyGroups(push.MaxGroups), nil, opts)
	if !errors.Is(err, backend.ErrRefused) || !strings.Contains(err.Error(), "refused by node edge1: 33 groups: at most 32") ||
		strings.Join(r.Groups, ",") != "user-alice" {
		t.Fatalf("join %d more: %+v, %v; want refused by edge1, groups user-alice", push.MaxGroups, r, err)
	}
	if _, err = backend.ChangeGroups(timeout(t), nc, "alice", []string{"room-2", "a.b"}, nil, opts); err == nil ||
		errors.Is(err, backend.ErrRefused) || !strings.Contains(err.Error(), `group "a.b"`) {
		t.Fatalf("join a.b: %v; want refused before sending, naming a.b", err)
	}
	if r, err = backend.ChangeGroups(timeout(t), nc, "alice", nil, nil, opts); err != nil || strings.Join(r.Groups, ",") != "user-alice" {
		t.Fatalf("groups after the refusals: %+v, %v; want user-alice alone", r, err)
	}
}

// pushctl member against a real node: a join prints the groups after it
// and its node, a group push then reaches the session, a leave (--json)
// answers with the groups left; offline is exit 1 saying so, too many
// groups exit 1 with the node's reason; nothing to change, or a bad
// name, is a usage error (exit 2).
func TestPushctlMember(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	alice := dialGroups(t, node.ws(), "alice", "user-alice")
	env := []string{"PUSHCTL_NATS=" + s.ClientURL()}

	r := runTool(t, env, "pushctl", "member", "alice", "--join", "room-1")
	if r.code != 0 || r.stdout != "alice: groups room-1, user-alice (node edge1)\n" {
		t.Fatalf("pushctl member alice --join room-1: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r = runTool(t, env, "pushctl", "push", "--group", "room-1", "--id", "r1", "hi"); r.code != 0 || !strings.HasPrefix(r.stdout, "enqueued for 1 member of room-1") {
		t.Fatalf("pushctl push --group room-1: exit %d, %q %q; want enqueued for 1 member", r.code, r.stdout, r.stderr)
	}
	if f := recv(t, alice); f.ID != "r1" {
		t.Fatalf("alice got %s; want r1", f.ID)
	}
	r = runTool(t, env, "pushctl", "member", "alice", "--leave", "room-1,user-alice", "--json")
	var reply struct {
		Online bool `json:"online"`
		protocol.MemberReply
	}
	if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil || r.code != 0 || !reply.Online || reply.Node != "edge1" ||
		reply.Groups == nil || len(reply.Groups) != 0 {
		t.Fatalf("pushctl member alice --leave --json: exit %d, %q (%v); want online, no groups", r.code, r.stdout, err)
	}
	if r = runTool(t, env, "pushctl", "member", "alice", "--leave", "room-1"); r.code != 0 || r.stdout != "alice: no groups (node edge1)\n" {
		t.Fatalf("pushctl member alice --leave room-1 again: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	if r = runTool(t, env, "pushctl", "member", "nobody", "--join", "g"); r.code != 1 || r.stdout != "nobody: offline (no node holds the session)\n" {
		t.Fatalf("pushctl member nobody: exit %d, %q %q; want 1, offline", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, env, "pushctl", "member", "alice", "--join", strings.Join(manyGroups(push.MaxGroups+1), ","))
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "pushctl member: membership of alice: backend: refused by node edge1: 33 groups: at most 32") {
		t.Fatalf("pushctl member alice --join 33 groups: exit %d, %q %q; want 1 with the node's reason", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, env, "pushctl", "member", "alice", "--join", strings.Join(manyGroups(push.MaxGroups+1), ","), "--json")
	var refused protocol.MemberReply
	if err := json.Unmarshal([]byte(r.stdout), &refused); err != nil || r.code != 1 || !strings.Contains(refused.Error, "at most 32") || len(refused.Groups) != 0 {
		t.Fatalf("pushctl member alice --join 33 groups --json: exit %d, %q (%v); want 1, the node's answer with its reason", r.code, r.stdout, err)
	}
	for _, args := range [][]string{{"alice"}, {"alice", "--join", "a.b"}, {"alice", "--leave", "all"}, {"all", "--join", "g"},
		{"a.b", "--join", "g"}, {"--join", "g"}, {"alice", "--join", "g", "--timeout", "0s"}} {
		if r = runTool(t, env, "pushctl", append([]string{"member"}, args...)...); r.code != 2 || !strings.Contains(r.stderr, "pushctl member: ") {
			t.Fatalf("pushctl member %q: exit %d, %q; want 2, refused", args, r.code, r.stderr)
		}
	}
	if r = runTool(t, nil, "pushctl", "member", "--help"); r.code != 0 || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "the node subscribes to the group before it answers") {
		t.Fatalf("pushctl member --help: exit %d, %q", r.code, r.stdout)
	}
}
