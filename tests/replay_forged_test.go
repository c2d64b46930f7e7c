package tests

import (
	"bytes"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/bus/protocol"
	"github.com/pushfabric/pushfabric/edge/client"
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
	js := natstest.JetStream(t, s)
	for _, f := range letters {
		h := nats.Header{}
		h.Set(protocol.HeaderID, f.id)
		h.Set(protocol.HeaderSubject, f.pushSubject)
		h.Set(protocol.HeaderSession, "")
		h.Set(protocol.HeaderReason, "offline")
		h.Set("Push-Reply", "evil.reply")
		h.Set("Nats-Forged", "1")
		if _, err := js.PublishMsg(timeout(t), &nats.Msg{Subject: f.subject, Header: h, Data: []byte(f.id)}); err != nil {
			t.Fatal(err)
		}
	}
}

// natsSpy keeps every message published on a server, but deliveries from
// streams and the takeovers edge n1 announces.
type natsSpy struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func spyOn(t *testing.T, s *server.Server) *natsSpy {
	t.Helper()
	sp := &natsSpy{}
	nc := natstest.Connect(t, s)
	if _, err := nc.Subscribe(">", func(m *nats.Msg) {
		switch {
		case strings.HasPrefix(m.Reply, "$JS.ACK."):
			return // a dead letter read from the stream
		case m.Header.Get(protocol.HeaderControl) == protocol.ControlTakeover && m.Header.Get(protocol.HeaderNode) == "n1":
			return // the edge's own announcement of a session it took
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		sp.msgs = append(sp.msgs, m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sp
}

// pushes returns the messages seen on push subjects; others returns the
// subjects seen that are neither those nor the JetStream traffic of
// reading and deleting dead letters and the replies to them.
func (sp *natsSpy) pushes() []*nats.Msg { return sp.matching(true) }

func (sp *natsSpy) others() []string {
	var out []string
	for _, m := range sp.matching(false) {
		out = append(out, m.Subject)
	}
	return out
}

func (sp *natsSpy) matching(push bool) []*nats.Msg {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	ok := []string{"_INBOX.", "$JS.ACK.", "$JS.FC.", "$JS.EVENT.", "$JS.API.INFO", "$JS.API.CONSUMER.",
		"$JS.API.STREAM.INFO.PUSH_DLQ", "$JS.API.STREAM.MSG.DELETE.PUSH_DLQ"}
	var out []*nats.Msg
	for _, m := range sp.msgs {
		isPush := strings.HasPrefix(m.Subject, "push.")
		known := slices.ContainsFunc(ok, func(p string) bool { return strings.HasPrefix(m.Subject, p) })
		if push && isPush || !push && !isPush && !known {
			out = append(out, m)
		}
	}
	return out
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
func checkReplayTraffic(t *testing.T, sp *natsSpy, want map[string]string, also ...string) {
	t.Helper()
	others := slices.DeleteFunc(sp.others(), func(s string) bool {
		return slices.ContainsFunc(also, func(p string) bool { return strings.HasPrefix(s, p) })
	})
	if len(others) != 0 {
		t.Errorf("replay published to %v", others)
	}
	got := map[string]string{}
	for _, m := range sp.pushes() {
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
func checkReplayHeaders(t *testing.T, sp *natsSpy) {
	t.Helper()
	for _, m := range sp.pushes() {
		for k := range m.Header {
			if k == protocol.HeaderSession || k == "Push-Reply" || strings.HasPrefix(strings.ToLower(k), "nats-") {
				t.Errorf("replayed push %s on %s carries %s", m.Header.Get(protocol.HeaderID), m.Subject, k)
			}
		}
	}
}
