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
	"regexp"
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

// LB is a running HAProxy.
type LB struct {
	out *buffer // its stdout and stderr: `log stdout` puts its logs here
}

// Log is what HAProxy has written so far: its log lines and its
// warnings.
func (lb *LB) Log() string { return lb.out.String() }

// Start runs the config at cfg (deployments/haproxy/haproxy.cfg or
// haproxy-tls.cfg) in the foreground until the test ends, its frontends
// on bind (the ports the config binds ${LB_BIND} to) and the three edges
// at the hosts given (each with 8080, 8081 and 9090), with env's
// VAR=value besides, and waits until every frontend accepts.
func Start(t testing.TB, cfg, bind string, edges [3]string, env ...string) *LB {
	t.Helper()
	exe := Path(t)
	abs, err := filepath.Abs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ports := bindPorts(t, abs)
	cmd := exec.Command(exe, "-db", "-f", abs)
	cmd.Env, cmd.Dir = append(append(os.Environ(), "LB_BIND="+bind), env...), t.TempDir()
	for i, h := range edges {
		cmd.Env = append(cmd.Env, fmt.Sprintf("EDGE%d_HOST=%s", i+1, h))
	}
	lb := &LB{out: &buffer{}}
	cmd.Stdout, cmd.Stderr = lb.out, lb.out
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
			t.Logf("haproxy:\n%s", lb.out)
		}
	})
	awaitFrontends(t, bind, ports, exited, lb.out)
	return lb
}

// awaitFrontends waits until each port on host accepts, failing the test
// if haproxy exits first or 30 s pass.
func awaitFrontends(t testing.TB, host string, ports []string, exited <-chan struct{}, out *buffer) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !accepts(host, ports); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's frontends on %s:%v did not accept:\n%s", host, ports, out)
		}
	}
}

// bindLine is a frontend's bind to ${LB_BIND}, its port the submatch.
var bindLine = regexp.MustCompile(`(?m)^\s*bind\s+"\$\{LB_BIND[^}]*\}:(\d+)"`)

// bindPorts is the ports the config at path binds ${LB_BIND} to.
func bindPorts(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, m := range bindLine.FindAllSubmatch(b, -1) {
		ports = append(ports, string(m[1]))
	}
	if len(ports) == 0 {
		t.Fatalf("%s binds no port to ${LB_BIND}", path)
	}
	return ports
}

// accepts says whether every port on host takes connections.
func accepts(host string, ports []string) bool {
	for _, port := range ports {
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
