package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is a long-lived command of a document (a listener, a backend,
// a node) running until the test ends, its output kept to wait on.
type process struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	grew   chan struct{} // closed and replaced each time out grows
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

// start runs name with args in dir with env until the test ends.
func start(t *testing.T, dir string, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(name, args...), grew: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Logf("%s %q:\n%s", name, args, p.output())
	})
	return p
}

// startLine runs one command line of a document with sh, as typed.
func startLine(t *testing.T, dir string, env []string, line string) *process {
	t.Helper()
	return start(t, dir, env, "sh", "-c", "exec "+line)
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	close(p.grew)
	p.grew = make(chan struct{})
	return len(b), nil
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the output holds want, failing when the process
// exits first or testTimeout passes; it returns the output.
func (p *process) waitFor(t *testing.T, want string) string {
	t.Helper()
	return p.waitUntil(t, fmt.Sprintf("say %q", want), func(out string) bool { return strings.Contains(out, want) })
}

// waitUntil waits until ok holds for the output, as waitFor.
func (p *process) waitUntil(t *testing.T, what string, ok func(out string) bool) string {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		p.mu.Lock()
		out, grew := p.out.String(), p.grew
		p.mu.Unlock()
		if ok(out) {
			return out
		}
		select {
		case <-grew:
		case <-p.exited:
			if out := p.output(); ok(out) {
				return out
			}
			t.Fatalf("%s exited (%v) before it would %s:\n%s", p.name, p.err, what, p.output())
		case <-deadline:
			t.Fatalf("%s did not %s within %s:\n%s", p.name, what, testTimeout, p.output())
		}
	}
}

// interrupt sends sig (Ctrl-C is SIGINT) and waits for the process to
// exit, returning how it exited.
func (p *process) interrupt(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(testTimeout):
		t.Fatalf("%s did not exit after %v:\n%s", p.name, sig, p.output())
	}
	return nil
}

// background runs a long-lived command in dir until the test ends, and
// waits for ready in its output.
func background(t *testing.T, dir string, env []string, ready string, name string, args ...string) {
	t.Helper()
	start(t, dir, env, name, args...).waitFor(t, ready)
}

// docLine is one command of a document: a line of a sh block (a line
// ending in \ continues on the next) or a "$ " line of a console block,
// and the comment after it, if any ("  # …").
type docLine struct{ cmd, comment string }

// docLines returns the commands of the document at path, in order.
func docLines(t *testing.T, path string) []docLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docLine
	block, cont := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```") && block == "":
			block = strings.TrimPrefix(line, "```")
			continue
		case strings.HasPrefix(line, "```"):
			block = ""
			continue
		case block == "console":
			var ok bool
			if line, ok = strings.CutPrefix(line, "$ "); !ok {
				continue // the command's output
			}
		case block != "sh":
			continue
		}
		if c, ok := strings.CutSuffix(line, "\\"); ok {
			cont += strings.TrimSpace(c) + " "
			continue
		}
		line, cont = cont+strings.TrimSpace(line), ""
		var d docLine
		if i := strings.Index(line, "  #"); i >= 0 {
			d.comment = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line[i:]), "#"))
			line = line[:i]
		}
		if d.cmd = strings.TrimSpace(line); d.cmd != "" {
			out = append(out, d)
		}
	}
	return out
}

// shell runs line with sh -c in dir with env, logs it with its output, and
// returns the output and the exit status; a line sh cannot start fails the
// test.
func shell(t *testing.T, dir string, env []string, line string) (string, int) {
	t.Helper()
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s\n%s", line, out)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", line, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}
