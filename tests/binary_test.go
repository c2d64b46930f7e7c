package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The real binaries, built once for the tests that run them.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "pushfabric-bin-")
		if buildErr != nil {
			return
		}
		for cmd, pkg := range map[string]string{"edge": "../cmd/edge", "pushctl": "../cmd/pushctl",
			"pushbench": "../cmd/pushbench", "pushhttp": "../cmd/pushhttp", "rpc-service": "../examples/rpc-service",
			"browser-serve": "../examples/browser/serve"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// removeBinaries deletes the folder binary built into, if it did: some
// 120 MB a run.
func removeBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// edgeProcess is the edge binary running as a child process.
type edgeProcess struct {
	cmd     *exec.Cmd
	started map[string]any // the "edge started" log line
	exited  chan error
	logs    *logLines
}

// logLines keeps a process's JSON log lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

// startEdgeProcess runs the edge binary with args in dir and waits for its
// "edge started" log line.
func startEdgeProcess(t testing.TB, dir string, args ...string) *edgeProcess {
	t.Helper()
	base := []string{"--log-format", "json"}
	if len(args) > 0 { // a node configured by the test: no fixed ports, no load balancer to wait for
		base = append(base, "--admin-listen", "127.0.0.1:0", "--drain-delay", "0")
	}
	cmd := exec.Command(binary(t, "edge"), append(base, args...)...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &edgeProcess{cmd: cmd, exited: make(chan error, 1), logs: &logLines{}}
	started := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			p.logs.mu.Lock()
			p.logs.lines = append(p.logs.lines, line)
			p.logs.mu.Unlock()
			if line["msg"] == "edge started" {
				started <- line
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // once it exited, ErrProcessDone (Wait's goroutine owns ProcessState)
	select {
	case p.started = <-started:
	case err := <-p.exited:
		t.Fatalf("edge exited before it started: %v; log: %v", err, p.logs.lines)
	case <-time.After(testTimeout):
		t.Fatal("edge did not start")
	}
	return p
}

// all returns the lines so far.
func (l *logLines) all() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (p *edgeProcess) addr(key string) string {
	s, _ := p.started[key].(string)
	return s
}

// stop sends SIGTERM and returns how long the process took to exit, and
// how it exited.
func (p *edgeProcess) stop(t testing.TB) (time.Duration, error) {
	t.Helper()
	begin := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return time.Since(begin), err
	case <-time.After(testTimeout):
		t.Fatal("edge did not exit after SIGTERM")
	}
	return 0, nil
}

func writeSecret(t testing.TB) string {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
