package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

// lockedBuffer collects a child process's stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serverWithUser is a JetStream server that only lets user in, with
// password.
func serverWithUser(t *testing.T, user, password string) *server.Server {
	t.Helper()
	opts := natstest.Options(t, "n1")
	opts.Username, opts.Password = user, password
	return natstest.StartWith(t, opts)
}

// exitOutput runs a binary until it exits and returns everything it wrote
// and its exit status.
func exitOutput(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(timeout(t), binary(t, name), args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s %q: %v", name, args, err)
	return "", 0
}

// runEdgeUntil runs the edge binary until its output contains ready, then
// stops it with SIGTERM and returns everything it wrote.
func runEdgeUntil(t *testing.T, ready string, args ...string) string {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(binary(t, "edge"), args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = t.TempDir(), out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, waited := make(chan error, 1), make(chan struct{})
	go func() { exited <- cmd.Wait(); close(waited) }()
	t.Cleanup(func() { // a kill of one that has exited does nothing; ProcessState would race with Wait
		_ = cmd.Process.Kill()
		<-waited
	})
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(out.String(), ready) {
		select {
		case err := <-exited:
			t.Fatalf("edge exited (%v) before it printed %q:\n%s", err, ready, out)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not print %q:\n%s", ready, out)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(testTimeout):
		t.Fatal("edge did not exit after SIGTERM")
	}
	return out.String()
}

func mustNotShow(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows the secret %q:\n%s", what, s, out)
		}
	}
}

// A NATS password or token in a URL never appears in what the edge binary
// prints or shows: not in its start line or quickstart, not in the command
// line its profiles serve, not when the server refuses it, nor when the
// server is not there, nor when the URL does not parse.
func TestEdgeNeverPrintsNATSCredentials(t *testing.T) {
	s := serverWithUser(t, "u", "secretpw")
	url := fmt.Sprintf("nats://u:secretpw@%s", s.Addr())
	listeners := []string{"--ws-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--log-format", "json", "--log-level", "debug"}

	out := runEdgeUntil(t, "pushctl top --admin", append(listeners, "--nats-url", url, "--quickstart")...)
	mustNotShow(t, "a running edge", out, "secretpw")
	mustContain(t, "edge", []byte(out), fmt.Sprintf(`"nats":"nats://[REDACTED]@%s"`, s.Addr()))

	cmdline := pprofCmdline(t, "--nats-url", url)
	mustNotShow(t, "/debug/pprof/cmdline", string(cmdline), "secretpw")
	mustContain(t, "/debug/pprof/cmdline", cmdline, "--nats-url\x00nats://[REDACTED]@")

	closed := natstest.FreePort(t)
	for _, c := range []struct{ what, url, secret string }{
		{"refused credentials", fmt.Sprintf("nats://u:badsecret@%s", s.Addr()), "badsecret"},
		{"no server", fmt.Sprintf("nats://u:secretpw@127.0.0.1:%d", closed), "secretpw"},
		{"a token and no server", fmt.Sprintf("nats://secrettoken@127.0.0.1:%d", closed), "secrettoken"},
		{"an unparsable URL", "nats://u:secretpw@127.0.0.1:abc", "secretpw"},
		{"a password with a slash", "nats://u:secret/pw@127.0.0.1:1", "secret"},
	} {
		out, code := exitOutput(t, "edge", append(listeners, "--nats-url", c.url)...)
		if code == 0 {
			t.Errorf("%s: edge exited 0:\n%s", c.what, out)
		}
		mustNotShow(t, c.what, out, c.secret)
		mustContain(t, c.what, []byte(out), "[REDACTED]")
	}
}

// pprofCmdline starts the edge binary with args and --pprof and returns
// what its /debug/pprof/cmdline serves.
func pprofCmdline(t *testing.T, args ...string) []byte {
	t.Helper()
	p := startEdgeProcess(t, t.TempDir(), append(args, "--ws-listen", "", "--tcp-listen", "127.0.0.1:0", "--pprof")...)
	resp, err := http.Get("http://" + p.addr("admin") + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/pprof/cmdline: %s %v", resp.Status, err)
	}
	if _, err := p.stop(t); err != nil {
		t.Fatalf("edge exited with %v", err)
	}
	return cmdline
}

// A NATS token given with --nats-token is not shown either: not in the
// log, nor in the command line the profiles serve, in either form.
func TestEdgeNeverShowsNATSToken(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Authorization = "secrettoken"
	s := natstest.StartWith(t, opts)
	url := "nats://" + s.Addr().String()

	out := runEdgeUntil(t, "edge started", "--nats-url", url, "--nats-token", "secrettoken", "--ws-listen", "",
		"--tcp-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	mustNotShow(t, "a running edge", out, "secrettoken")

	cmdline := pprofCmdline(t, "--nats-url", url, "--nats-token", "secrettoken")
	mustNotShow(t, "/debug/pprof/cmdline", string(cmdline), "secrettoken")
	mustContain(t, "/debug/pprof/cmdline", cmdline, "--nats-token\x00[REDACTED]\x00")
	cmdline = pprofCmdline(t, "--nats-url", url, "--nats-token=secrettoken")
	mustNotShow(t, "/debug/pprof/cmdline", string(cmdline), "secrettoken")
	mustContain(t, "/debug/pprof/cmdline", cmdline, "--nats-token=[REDACTED]\x00")
}

// pushctl, too, keeps the credentials of --nats to itself, whether it
// reaches the server or not.
func TestPushctlNeverPrintsNATSCredentials(t *testing.T) {
	s := serverWithUser(t, "u", "secretpw")
	js, err := jetstream.New(natstest.Connect(t, s, nats.UserInfo("u", "secretpw")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dlq.EnsureStream(timeout(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	out, code := exitOutput(t, "pushctl", "push", "--nats", fmt.Sprintf("nats://u:secretpw@%s", s.Addr()), "nobody", "hi")
	if code != 1 || !strings.Contains(out, "offline") { // the server let pushctl in; no one holds the session
		t.Fatalf("pushctl push to an offline session: exit %d:\n%s", code, out)
	}
	mustNotShow(t, "pushctl push", out, "secretpw")

	closed := natstest.FreePort(t)
	for _, c := range []struct {
		what, secret string
		args         []string
	}{
		{"refused credentials", "badsecret", []string{"push", "--nats", fmt.Sprintf("nats://u:badsecret@%s", s.Addr()), "alice", "hi"}},
		{"no server", "secretpw", []string{"push", "--nats", fmt.Sprintf("nats://u:secretpw@127.0.0.1:%d", closed), "alice", "hi"}},
		{"an unparsable URL", "secretpw", []string{"push", "--nats", "nats://u:secretpw@127.0.0.1:abc", "alice", "hi"}},
		{"dlq ls, no server", "secrettoken", []string{"dlq", "ls", "--nats", fmt.Sprintf("nats://secrettoken@127.0.0.1:%d", closed)}},
	} {
		out, code := exitOutput(t, "pushctl", c.args...)
		if code == 0 {
			t.Errorf("%s: pushctl exited 0:\n%s", c.what, out)
		}
		mustNotShow(t, c.what, out, c.secret)
		mustContain(t, c.what, []byte(out), "[REDACTED]")
	}
}
