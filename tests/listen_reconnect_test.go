package tests

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// lineLog keeps a process's output lines and tells when one containing a
// string arrives.
type lineLog struct {
	mu      sync.Mutex
	lines   []string      // guarded by mu
	changed chan struct{} // guarded by mu: closed and replaced on each line
}

func readLines(r io.Reader, l *lineLog, done *sync.WaitGroup) {
	defer done.Done()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

// count is how many lines so far contain s.
func (l *lineLog) count(s string) (n int, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n, l.changed
}

// wait waits for a line containing s.
func (l *lineLog) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		n, changed := l.count(s)
		if n > 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no line with %q in %q", s, l.lines)
		}
	}
}

// startPushctl runs pushctl with args, its output read line by line;
// wait reads it to the end and waits for the command's exit (once: the
// test's end kills and waits for it too).
func startPushctl(t *testing.T, args ...string) (stdout, stderr *lineLog, wait func() error) {
	t.Helper()
	cmd := exec.Command(binary(t, "pushctl"), args...)
	cmd.Env = toolEnv(t)
	stdout, stderr = &lineLog{changed: make(chan struct{})}, &lineLog{changed: make(chan struct{})}
	outPipe, _ := cmd.StdoutPipe()
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var read sync.WaitGroup
	read.Add(2)
	go readLines(outPipe, stdout, &read)
	go readLines(errPipe, stderr, &read)
	wait = sync.OnceValue(func() error {
		read.Wait()
		return cmd.Wait()
	})
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = wait() })
	return stdout, stderr, wait
}

// pushctl listen --reconnect holds its session across a node's shutdown:
// it says on stderr where it reconnected and after what, prints a push
// published again with the same Push-Id once, and stops, with listen's
// exit status 1, when a newer connection takes the session.
func TestPushctlListenReconnects(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	cfgA := edgeConfig(t, s, "A")
	a := startEdge(t, cfgA)
	stdout, stderr, wait := startPushctl(t, "listen", "--reconnect", "--addr", a.tcp(), "--secret-file", cfgA.JWTSecretFile, "roamer")

	stderr.wait(t, `on node "A"`)
	request(t, nc, pushMsg("roamer", "high", "x", "one"))
	stdout.wait(t, "x: one")

	a.shutdown(t)
	cfgB := edgeConfig(t, s, "B")
	cfgB.TCPListen = a.Addr("tcp").String()
	cfgB.JWTSecretFile = cfgA.JWTSecretFile
	b := startEdge(t, cfgB)
	stderr.wait(t, `reconnected to node "B" after shutdown`)
	request(t, nc, pushMsg("roamer", "high", "x", "one"))
	request(t, nc, pushMsg("roamer", "high", "y", "two"))
	stdout.wait(t, "y: two")
	if n, _ := stdout.count("x: one"); n != 1 {
		t.Fatalf("x printed %d times; want once", n)
	}

	dial(t, b.tcp(), "roamer", client.Options{})
	err := wait()
	stderr.wait(t, "replaced")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("pushctl listen --reconnect after replaced: %v; want exit status 1", err)
	}
	t.Logf("pushctl stderr: %q", stderr.lines)
	if n, _ := stderr.count("reconnected"); n != 1 {
		t.Fatalf("%d reconnect lines; want 1", n)
	}
}

// pushctl listen without --reconnect, minting its own token, refreshes it
// ahead of its exp: a listener left running outlives its token (here 2 s
// and the edge's leeway) on its one connection, and still prints pushes.
func TestPushctlListenRefreshesItsToken(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	cfg := edgeConfig(t, s, "A")
	a := startEdge(t, cfg)
	stdout, stderr, _ := startPushctl(t, "listen", "--ttl", "2s", "--addr", a.tcp(), "--secret-file", cfg.JWTSecretFile, "sleeper")
	stderr.wait(t, `on node "A"`)
	began := time.Now()

	waitFor(t, "past the first token's end, refreshed", func() bool {
		return time.Since(began) > 2*time.Second+token.Leeway+time.Second && a.Server.Stats().Refreshes[edge.RefreshOK] >= 2
	})
	request(t, nc, pushMsg("sleeper", "high", "late", "still here"))
	stdout.wait(t, "late: still here")
	if st := a.Server.Stats(); st.Disconnects[wire.CloseTokenExpired] != 0 || st.Sessions != 1 {
		t.Fatalf("token_expired closes %d, sessions %d; want the first connection throughout", st.Disconnects[wire.CloseTokenExpired], st.Sessions)
	}
}
