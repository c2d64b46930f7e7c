// Package lbtest runs the shipped HAProxy config (deployments/haproxy) in
// a test, in front of three edges.
package lbtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Path is Debian's haproxy (.ci/run installs it), or a skip; with
// PUSHFABRIC_REQUIRE_HAPROXY=1 (CI) its absence fails the test.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"haproxy", "/usr/sbin/haproxy"} { // Debian's, off a user's PATH
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PUSHFABRIC_REQUIRE_HAPROXY") == "1" {
		t.Fatal("no haproxy on PATH, and PUSHFABRIC_REQUIRE_HAPROXY=1")
	}
	t.Skip("no haproxy on PATH (apt-get install haproxy): the shipped load-balancer config is not exercised")
	return ""
}

// Start runs the config at cfg (deployments/haproxy/haproxy.cfg) in the
// foreground until the test ends, its frontends on bind (ports 8080 and
// 8081, as the config has them) and the three edges at the hosts given
// (each with 8080, 8081 and 9090), and waits until the frontends accept.
func Start(t testing.TB, cfg, bind string, edges [3]string) {
	t.Helper()
	exe := Path(t)
	abs, err := filepath.Abs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "LB_BIND="+bind)
	for i, h := range edges {
		env = append(env, fmt.Sprintf("EDGE%d_HOST=%s", i+1, h))
	}
	cmd := exec.Command(exe, "-db", "-f", abs)
	cmd.Env, cmd.Dir = env, t.TempDir()
	out := &buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy:\n%s", out)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !accepts(bind); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's frontends on %s did not accept:\n%s", bind, out)
		}
	}
}

// accepts says whether both frontends take connections.
func accepts(host string) bool {
	for _, port := range []string{"8080", "8081"} {
		c, err := net.Dial("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return false
		}
		_ = c.Close()
	}
	return true
}

// buffer is haproxy's output, written by exec's copying goroutine.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
