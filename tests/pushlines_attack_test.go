package tests

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// maxPushLine is pushctl push --lines' longest line.
const maxPushLine = 4 << 20

// paddedLine is a push to session as a JSON line of exactly n bytes,
// blanks inside the object making up the length.
func paddedLine(session, id string, n int) string {
	head := fmt.Sprintf(`{"session":%q,"payload":"x","headers":{"Push-Id":%q}`, session, id)
	return head + strings.Repeat(" ", n-len(head)-1) + "}"
}

// The lines an outsider feeds pushctl push --lines: a line of exactly the
// longest length goes, one a byte longer is refused, with CRLF or not;
// a payload that is not UTF-8 is refused, not sent altered; a line of
// binary garbage is refused, saying why, and the others still go; blanks
// after the last line are no line.
func TestPushctlPushLinesEdges(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	got := &frames{got: map[string][]client.Frame{}, to: map[string]string{}}
	dial(t, n.tcp(), "alice", client.Options{OnPush: got.on("alice")})
	input := strings.Join([]string{
		paddedLine("alice", "exact", maxPushLine),
		paddedLine("alice", "over", maxPushLine+1),
		paddedLine("alice", "exact-crlf", maxPushLine) + "\r",
		`{"session":"alice","payload":"caf` + "\xe9" + `","headers":{"Push-Id":"latin1"}}`,
		"\x00\x01\x1b[2J\xff\xfe garbage \x7f",
		`{"session":"alice","payload":"ok","headers":{"Push-Id":"ok"}}`,
	}, "\n") + "\n  \t "
	r := runToolInput(t, nil, input, "pushctl", "push", "--lines", "--batch", "2", "--nats", s.ClientURL())
	for _, want := range []string{
		"line 2: refused: longer than 4194304 bytes",
		"line 4: refused: ",
		"line 5: refused: not a push as JSON",
		"6 lines: 3 enqueued, 3 refused\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%.2000s", want, r.stdout)
		}
	}
	if r.code != 1 {
		t.Errorf("exit %d; want 1 (lines refused)", r.code)
	}
	waitFor(t, "the pushes that went", func() bool { return got.count() >= 3 })
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, id := range []string{"exact", "exact-crlf", "ok"} {
		if len(got.got[id]) != 1 {
			t.Errorf("push %s received %d times; want once", id, len(got.got[id]))
		}
	}
	if fs := got.got["latin1"]; len(fs) > 0 {
		t.Errorf("push latin1 sent as %q; want it refused (not UTF-8), not sent altered", fs[0].Payload)
	}
}

// Many lines at once: every push delivered, the summary counts them all,
// exit 0.
func TestPushctlPushLinesMany(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	cfg.Edge.QueueLen = 4096
	n := startEdge(t, cfg)
	got := &frames{got: map[string][]client.Frame{}, to: map[string]string{}}
	const sessions, lines = 5, 25_000
	for i := range sessions {
		session := fmt.Sprintf("m%d", i)
		dial(t, n.tcp(), session, client.Options{OnPush: got.on(session)})
	}
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, `{"session":"m%d","payload":"%d"}`+"\n", i%sessions, i)
	}
	r := runToolInput(t, nil, b.String(), "pushctl", "push", "--lines", "--nats", s.ClientURL())
	if r.code != 0 || r.stdout != fmt.Sprintf("%d lines: %d enqueued\n", lines, lines) {
		t.Fatalf("exit %d; want 0 and every line enqueued:\n%.2000s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "every push delivered", func() bool { return got.count() == lines })
}

// NATS unreachable at start: exit 1 at once, saying so. NATS gone in the
// middle (the server shut down while lines still come): no hang, the
// pushes after it unacknowledged or not sent, every line in the summary,
// exit 1.
func TestPushctlPushLinesNATSDown(t *testing.T) {
	r := runToolInput(t, nil, `{"session":"a","payload":"x"}`+"\n", "pushctl", "push", "--lines",
		"--nats", fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t)))
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "pushctl push") {
		t.Errorf("NATS unreachable: exit %d, stdout %q, stderr %q; want 1 and why on stderr", r.code, r.stdout, r.stderr)
	}

	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	alice := dial(t, n.tcp(), "alice", client.Options{})
	cmd := exec.Command(binary(t, "pushctl"), "push", "--lines", "--batch", "1", "--timeout", "2s", "--nats", s.ClientURL())
	cmd.Env = toolEnv(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	if _, err := io.WriteString(stdin, `{"session":"alice","payload":"before"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, alice); string(f.Payload) != "before" {
		t.Fatalf("alice got %q", f.Payload)
	}
	n.shutdown(t)
	s.Shutdown()
	s.WaitForShutdown()
	for i := range 3 {
		if _, err := fmt.Fprintf(stdin, `{"session":"alice","payload":"after %d"}`+"\n", i); err != nil {
			t.Fatal(err)
		}
	}
	stdin.Close()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit %v; want 1:\n%s", err, out.String())
		}
	case <-time.After(testTimeout):
		t.Fatalf("pushctl push --lines still running %v after NATS went:\n%s", testTimeout, out.String())
	}
	if !strings.Contains(out.String(), "4 lines: 1 enqueued, ") {
		t.Errorf("no summary of the 4 lines:\n%s", out.String())
	}
}
