package tests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// pushctl presence, kick and sessions against a real node: online is
// exit 0 with the node's fields, offline exit 1 saying so; kick closes
// the connection revoked; sessions lists what the node holds, as a table
// and as JSON.
func TestPushctlPresenceKickSessions(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	c := dial(t, node.ws(), "grace", client.Options{})
	env := []string{"PUSHCTL_NATS=" + s.ClientURL()}
	admin := "http://" + node.Addr("admin").String()

	r := runTool(t, env, "pushctl", "presence", "grace")
	if r.code != 0 || !strings.Contains(r.stdout, "grace: online on node edge1") || !strings.Contains(r.stdout, "over websocket from 127.0.0.1:") {
		t.Fatalf("pushctl presence grace: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, env, "pushctl", "presence", "--json", "grace")
	var info struct {
		Online bool `json:"online"`
		protocol.SessionInfo
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.code != 0 || !info.Online || info.Node != "edge1" || info.Transport != "websocket" {
		t.Fatalf("pushctl presence --json grace: exit %d, %q (%v)", r.code, r.stdout, err)
	}
	if r = runTool(t, env, "pushctl", "presence", "nobody"); r.code != 1 || !strings.Contains(r.stdout, "nobody: offline") {
		t.Fatalf("pushctl presence nobody: exit %d, %q %q; want 1, offline", r.code, r.stdout, r.stderr)
	}

	r = runTool(t, nil, "pushctl", "sessions", "--admin", admin)
	if r.code != 0 || !strings.Contains(r.stdout, "SESSION") || !strings.Contains(r.stdout, "grace") || !strings.Contains(r.stdout, "1 session\n") {
		t.Fatalf("pushctl sessions: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r = runTool(t, nil, "pushctl", "sessions", "--admin", admin, "--node", "edge9"); r.code != 0 || strings.Contains(r.stdout, "grace") || !strings.Contains(r.stdout, "0 sessions") {
		t.Fatalf("pushctl sessions --node edge9: exit %d, %q %q; want none listed", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, nil, "pushctl", "sessions", "--json", "--admin", admin, "--node", "edge1")
	var list []protocol.SessionInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].Session != "grace" || list[0].Node != "edge1" {
		t.Fatalf("pushctl sessions --json: exit %d, %q (%v)", r.code, r.stdout, err)
	}

	if r = runTool(t, env, "pushctl", "kick", "grace"); r.code != 0 || !strings.Contains(r.stdout, "grace: kicked: node edge1") {
		t.Fatalf("pushctl kick grace: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	waitEnded(t, c)
	if !isClose(c.Err(), wire.CloseRevoked) {
		t.Fatalf("connection ended with %v; want revoked", c.Err())
	}
	waitFor(t, "grace gone from /sessions", func() bool {
		r := runTool(t, nil, "pushctl", "sessions", "--json", "--admin", admin)
		return r.code == 0 && strings.TrimSpace(r.stdout) == "[]"
	})
	if r = runTool(t, env, "pushctl", "kick", "grace"); r.code != 1 || !strings.Contains(r.stdout, "grace: offline") {
		t.Fatalf("pushctl kick grace again: exit %d, %q %q; want 1, offline", r.code, r.stdout, r.stderr)
	}
	if r = runTool(t, nil, "pushctl", "sessions", "--admin", "http://127.0.0.1:1"); r.code != 1 {
		t.Fatalf("pushctl sessions of no node: exit %d; want 1", r.code)
	}
	if r = runTool(t, nil, "pushctl", "kick", "a.b"); r.code != 2 {
		t.Fatalf("pushctl kick a.b: exit %d; want 2 (not a session name)", r.code)
	}
}

// pushctl presence --group against real nodes of a cluster: the members
// on two nodes are all listed, each with its node, then counted; --all
// lists every connection; a group without members exits 1 and says so; a
// bad group name, or --group with a session, is refused (exit 2); a
// group push of one member is counted in the singular, and one every node
// answered dead exits 1 with each node's reason.
func TestPushctlGroupPresence(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	nodes := clusterEdges(t, servers, nil)
	dialGroups(t, nodes[0].tcp(), "alice-tab1", "user-alice")
	dialGroups(t, nodes[0].ws(), "alice-tab2", "user-alice", "room-1")
	dialGroups(t, nodes[1].tcp(), "alice-phone", "user-alice")
	dialGroups(t, nodes[1].ws(), "bob")
	waitForSubs(t, servers, "push.group.user-alice.presence", 2) // one per node with members
	waitForSubs(t, servers, "push.all.presence", 2)
	env := []string{"PUSHCTL_NATS=" + servers[2].ClientURL()} // asked through the server of the node without members

	r := runTool(t, env, "pushctl", "presence", "--group", "user-alice")
	want := []string{"alice-phone: online on node edge2", "alice-tab1: online on node edge1", "alice-tab2: online on node edge1",
		"3 members of user-alice on 2 nodes"}
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != len(want) {
		t.Fatalf("pushctl presence --group user-alice: exit %d, %q %q; want the 3 members and the count", r.code, r.stdout, r.stderr)
	} else {
		for i, w := range want {
			if !strings.HasPrefix(lines[i], w) {
				t.Fatalf("line %d: %q; want it to start %q", i+1, lines[i], w)
			}
		}
		if !strings.Contains(lines[2], "over websocket") || !strings.Contains(lines[2], "; groups room-1, user-alice") {
			t.Fatalf("alice-tab2: %q; want over websocket, with groups room-1, user-alice", lines[2])
		}
	}
	r = runTool(t, env, "pushctl", "presence", "--group", "user-alice", "--json")
	var g struct {
		Online  bool                   `json:"online"`
		Members []protocol.SessionInfo `json:"members"`
		Nodes   []string               `json:"nodes"`
		Answers int                    `json:"answers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil || r.code != 0 || !g.Online || len(g.Members) != 3 ||
		strings.Join(g.Nodes, ",") != "edge1,edge2" || g.Answers != 2 || g.Members[0].Session != "alice-phone" || g.Members[0].Node != "edge2" {
		t.Fatalf("pushctl presence --group user-alice --json: exit %d, %q (%v); want 3 members on edge1,edge2", r.code, r.stdout, err)
	}
	// A group left in the shell for pushctl push is not presence's.
	if r = runTool(t, append(env, "PUSHCTL_GROUP=user-alice"), "pushctl", "presence", "alice-tab1"); r.code != 0 ||
		!strings.HasPrefix(r.stdout, "alice-tab1: online on node edge1") {
		t.Fatalf("pushctl presence alice-tab1 with PUSHCTL_GROUP set: exit %d, %q %q; want alice-tab1 alone", r.code, r.stdout, r.stderr)
	}
	if r = runTool(t, append(env, "PUSHCTL_PRESENCE_GROUP=room-1"), "pushctl", "presence"); r.code != 0 || !strings.Contains(r.stdout, "1 member of room-1 on 1 node\n") {
		t.Fatalf("pushctl presence with PUSHCTL_PRESENCE_GROUP=room-1: exit %d, %q %q; want 1 member on 1 node", r.code, r.stdout, r.stderr)
	}
	if r = runTool(t, env, "pushctl", "presence", "--group", "room-1"); r.code != 0 || !strings.Contains(r.stdout, "1 member of room-1 on 1 node\n") {
		t.Fatalf("pushctl presence --group room-1: exit %d, %q %q; want 1 member on 1 node", r.code, r.stdout, r.stderr)
	}
	if r = runTool(t, env, "pushctl", "presence", "--all"); r.code != 0 || !strings.Contains(r.stdout, "bob: online on node edge2") ||
		!strings.Contains(r.stdout, "4 sessions online on 2 nodes") {
		t.Fatalf("pushctl presence --all: exit %d, %q %q; want the 4 sessions on 2 nodes", r.code, r.stdout, r.stderr)
	}

	r = runTool(t, env, "pushctl", "presence", "--group", "nobody-here")
	if r.code != 1 || strings.TrimSpace(r.stdout) != "nobody-here: no member online (no node holds a member)" {
		t.Fatalf("pushctl presence --group nobody-here: exit %d, %q %q; want 1, no member online", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, env, "pushctl", "presence", "--group", "nobody-here", "--json")
	if r.code != 1 || !strings.Contains(r.stdout, `"offline":true`) || !strings.Contains(r.stdout, `"online":false`) {
		t.Fatalf("pushctl presence --group nobody-here --json: exit %d, %q; want 1, offline", r.code, r.stdout)
	}
	for _, args := range [][]string{{"--group", "a.b"}, {"--group", "all"}, {"--group", "user-alice", "alice-tab1"}, {"--all", "--group", "g"}, {}} {
		if r = runTool(t, env, "pushctl", append([]string{"presence"}, args...)...); r.code != 2 || !strings.Contains(r.stderr, "pushctl presence: ") {
			t.Fatalf("pushctl presence %q: exit %d, %q; want 2, refused", args, r.code, r.stderr)
		}
	}
	if r = runTool(t, env, "pushctl", "presence", "--group", "a.b"); !strings.Contains(r.stderr, `group "a.b"`) {
		t.Fatalf("pushctl presence --group a.b: %q; want the group's name in the error", r.stderr)
	}

	if r = runTool(t, env, "pushctl", "push", "--group", "room-1", "hi"); r.code != 0 || !strings.HasPrefix(r.stdout, "enqueued for 1 member of room-1 on 1 node (push ") {
		t.Fatalf("pushctl push --group room-1: exit %d, %q %q; want enqueued for 1 member on 1 node", r.code, r.stdout, r.stderr)
	}
	// Every node answered dead: said with the reason, exit 1.
	r = runTool(t, env, "pushctl", "push", "--group", "user-alice", "--expires-in", "1ns", "--id", "late", "hi")
	if r.code != 1 || !strings.Contains(r.stdout, "dead: expired on node edge1, for its members of user-alice (push late, dead-lettered)") ||
		!strings.Contains(r.stdout, "dead: expired on node edge2") || strings.Contains(r.stdout, "enqueued") {
		t.Fatalf("pushctl push --group with the push expired: exit %d, %q %q; want 1, dead expired on edge1 and edge2", r.code, r.stdout, r.stderr)
	}
}

// A presence request that reaches only a node that has just let go of
// the session goes unanswered (docs/sessions.md); pushctl presence asks
// again while its --timeout lasts, and reaches the node that holds it
// now. Here the node letting go is a subscription that takes the first
// request and answers nothing, and the session connects meanwhile (its
// node subscribes before that one goes, so no try finds no responders).
func TestPushctlPresenceAsksAgain(t *testing.T) {
	s := natstest.Server(t)
	node := startEdge(t, edgeConfig(t, s, "edge1"))
	nc := natstest.Connect(t, s)
	first := make(chan struct{})
	letGo, err := nc.Subscribe("push.ivy.presence", func(*nats.Msg) {
		select {
		case <-first:
		default:
			close(first)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	env := []string{"PUSHCTL_NATS=" + s.ClientURL()}
	done := make(chan cliRun, 1)
	go func() { done <- runTool(t, env, "pushctl", "presence", "--timeout", "30s", "ivy") }()
	select {
	case <-first:
	case <-timeout(t).Done():
		t.Fatal("pushctl presence asked nothing")
	}
	dial(t, node.tcp(), "ivy", client.Options{})
	if err := letGo.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.code != 0 || !strings.Contains(r.stdout, "ivy: online on node edge1") {
		t.Fatalf("pushctl presence ivy: exit %d, %q %q; want online on edge1, asked again", r.code, r.stdout, r.stderr)
	}
}
