package tests

import (
	"bytes"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// forgedLetter is a dead letter stored by someone allowed to park pushes.
type forgedLetter struct {
	subject, id, pushSubject string
	replayed                 bool // replay may publish it (to the session its subject names)
}

// forgedLetters: two that name session s1 in their subject but a backend
// or the stream's purge in their headers, and six that replay must refuse.
var forgedLetters = []forgedLetter{
	{"dlq.push.offline.s1.high", "f-backend", "req.push.transfer", true},
	{"dlq.push.offline.s1.low", "f-purge", "$JS.API.STREAM.PURGE.PUSH_DLQ", true},
	{"dlq.push.offline.all.high", "f-all", "push.all.high", false},
	{"dlq.push.offline.s1.ctl", "f-ctl", "push.s1.ctl", false},
	{"dlq.push.bogus.s1.high", "f-reason", "push.s1.high", false},
	{"dlq.push.offline.group.low", "f-group", "push.group.low", false},
	{"dlq.push.offline.bad!name.high", "f-session", "push.bad!name.high", false},
	{"dlq.push.offline.ctl.high", "f-ctl-session", "push.ctl.high", true}, // ctl is a valid session id
}

// storeForgedLetters writes the letters straight into PUSH_DLQ, each with
// headers replay must not carry.
func storeForgedLetters(t *testing.T, s *server.Server, letters []forgedLetter) {
	t.Helper()
	stored := make([]natstest.ForgedLetter, len(letters))
	for i, f := range letters {
		stored[i] = natstest.ForgedLetter{Subject: f.subject, ID: f.id, PushSubject: f.pushSubject}
	}
	natstest.StoreForged(timeout(t), t, natstest.JetStream(t, s), stored...)
}

// spyOn keeps every message published on s, but deliveries from streams
// and the takeovers edge n1 announces.
func spyOn(t *testing.T, s *server.Server) *natstest.Spy {
	t.Helper()
	return natstest.SpyOn(t, s, func(m *nats.Msg) bool {
		return m.Header.Get(protocol.HeaderControl) == protocol.ControlTakeover && m.Header.Get(protocol.HeaderNode) == "n1"
	})
}

// pushctl dlq replay over forged dead letters: it publishes nothing but
// pushes to push.<session>.high|low as the letters' subjects name them,
// without Push-Session, Push-Reply or Nats-* headers; it reports each
// letter it refuses, leaves it in the stream, and exits 1.
func TestPushctlReplayRefusesForgedLetters(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	c := dial(t, n.tcp(), "s1", client.Options{})
	ctl := dial(t, n.tcp(), "ctl", client.Options{})
	storeForgedLetters(t, s, forgedLetters)
	sp := spyOn(t, s)

	cmd := exec.Command(binary(t, "pushctl"), "dlq", "replay", "--nats", s.ClientURL())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("pushctl dlq replay: %v; want exit status 1\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("pushctl dlq replay:\n%s%s", stdout.String(), stderr.String())
	if !strings.Contains(stdout.String(), "replayed 3, still offline 0, failed 0, refused 5 (of 8 selected)") {
		t.Errorf("summary %q; want 3 replayed and 5 refused", stdout.String())
	}
	for _, f := range forgedLetters {
		if reported := strings.Contains(stderr.String(), `(push "`+f.id+`", `+f.subject+`) not replayed`); reported == f.replayed {
			t.Errorf("%s on %s reported refused: %v; want %v", f.id, f.subject, reported, !f.replayed)
		}
	}
	sp.Settle(t, s)
	checkReplayTraffic(t, sp, map[string]string{"f-backend": "push.s1.high", "f-purge": "push.s1.low", "f-ctl-session": "push.ctl.high"})
	checkReplayHeaders(t, sp)
	if got := []string{recv(t, c).ID, recv(t, c).ID, recv(t, ctl).ID}; !slices.Equal(got, []string{"f-backend", "f-purge", "f-ctl-session"}) {
		t.Errorf("the sessions got %v; want f-backend, f-purge (s1) and f-ctl-session (ctl)", got)
	}
	if left := deadLetters(t, s); len(left) != 5 {
		t.Fatalf("%d dead letters left; want the 5 refused ones", len(left))
	}
}

// checkReplayTraffic: the only pushes published are those in want (push
// id → subject), and nothing else was published but JetStream reads,
// deletions and replies, and subjects under the prefixes also allowed.
func checkReplayTraffic(t *testing.T, sp *natstest.Spy, want map[string]string, also ...string) {
	t.Helper()
	others := slices.DeleteFunc(sp.Others(), func(s string) bool {
		return slices.ContainsFunc(also, func(p string) bool { return strings.HasPrefix(s, p) })
	})
	if len(others) != 0 {
		t.Errorf("replay published to %v", others)
	}
	got := map[string]string{}
	for _, m := range sp.Pushes() {
		got[m.Header.Get(protocol.HeaderID)] = m.Subject
	}
	if len(got) != len(want) {
		t.Errorf("pushes published %v; want %v", got, want)
	}
	for id, subject := range want {
		if got[id] != subject {
			t.Errorf("push %s published to %q; want %s", id, got[id], subject)
		}
	}
}

// checkReplayHeaders: no push published carries Push-Session, Push-Reply or
// a Nats-* header.
func checkReplayHeaders(t *testing.T, sp *natstest.Spy) {
	t.Helper()
	for _, m := range sp.Pushes() {
		for k := range m.Header {
			if k == protocol.HeaderSession || k == "Push-Reply" || strings.HasPrefix(strings.ToLower(k), "nats-") {
				t.Errorf("replayed push %s on %s carries %s", m.Header.Get(protocol.HeaderID), m.Subject, k)
			}
		}
	}
}
