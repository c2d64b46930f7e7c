package tests

import (
	"encoding/json"
	"strings"
	"testing"

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
	if r.code != 0 || !strings.Contains(r.stdout, "SESSION") || !strings.Contains(r.stdout, "grace") || !strings.Contains(r.stdout, "1 sessions") {
		t.Fatalf("pushctl sessions: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTool(t, nil, "pushctl", "sessions", "--json", "--admin", admin)
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
