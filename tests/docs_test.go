package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// docCommands returns the pushctl and nats command lines of a document,
// in order, without their trailing comments.
func docCommands(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, d := range docLines(t, path) {
		if strings.HasPrefix(d.cmd, "nats ") || strings.HasPrefix(d.cmd, "pushctl ") {
			out = append(out, d.cmd)
		}
	}
	return out
}

// Every command of docs/dead-letters.md, run as written (in a terminal, as
// an operator would) against a real server holding dead letters for alice
// and bob, in the order the page gives them.
func TestDeadLetterRecipes(t *testing.T) {
	nats := natstest.CLI(t)
	pushctl := binary(t, "pushctl")
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	nc := natstest.Connect(t, s)
	p := newProducer(t, nc, "")
	for _, d := range []struct{ session, id, payload string }{{"alice", "p-1", "hello alice"}, {"alice", "p-2", "second"}, {"bob", "p-3", "for bob"}} {
		if ack, err := p.Push(timeout(t), d.session, push.High, []byte(d.payload), producer.WithID(d.id)); err != nil || ack.Reason != "offline" {
			t.Fatalf("park %s: %+v %v", d.id, ack, err)
		}
	}
	if err := p.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}

	bin := t.TempDir()
	for name, target := range map[string]string{"nats": nats, "pushctl": pushctl} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	var alice *client.Conn
	commands := docCommands(t, "../docs/dead-letters.md")
	if len(commands) < 15 {
		t.Fatalf("found %d commands in docs/dead-letters.md", len(commands))
	}
	for _, line := range commands {
		if strings.HasPrefix(line, "nats request push.alice") {
			alice = dial(t, n.ws(), "alice", client.Options{}) // alice is back
		}
		cmd := exec.Command("script", "-qec", line, "/dev/null")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "SHELL=/bin/sh", "PATH="+bin+":"+os.Getenv("PATH"),
			"NATS_URL="+s.ClientURL())
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("$ %s\n%s", line, out)
		switch {
		case strings.HasPrefix(line, "pushctl dlq show p-1"):
			mustContain(t, line, out, "Push-Reason: offline", "hello alice")
		case strings.HasPrefix(line, "pushctl dlq replay --session alice --dry-run"):
			mustContain(t, line, out, "2 dead letter(s) would be replayed")
		case line == "pushctl dlq replay --session alice":
			mustContain(t, line, out, "still offline 2")
		case strings.HasPrefix(line, "nats stream get PUSH_DLQ 1"):
			mustContain(t, line, out, "Push-Id: p-1")
		case strings.HasPrefix(line, "nats request push.alice"):
			if f := recv(t, alice); f.ID != "p-1" || string(f.Payload) != "hello alice" {
				t.Fatalf("alice got %s %q after the replay by hand", f.ID, f.Payload)
			}
		case strings.HasPrefix(line, "nats stream add --config"):
			if f := recv(t, alice); f.ID != "p-2" {
				t.Fatalf("alice got %s from the server-side replay; want p-2", f.ID)
			}
		}
	}
	left := map[string]bool{}
	for _, dl := range deadLetters(t, s) {
		left[dl.Header.Get("Push-Id")] = true
	}
	if len(left) != 1 || !left["p-3"] {
		t.Fatalf("dead letters left %v; want only bob's p-3", left)
	}
}

func mustContain(t *testing.T, cmd string, out []byte, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Fatalf("%s: output lacks %q:\n%s", cmd, w, out)
		}
	}
}

// The commands of docs/requests.md, run as written against a node: the
// backends (examples/rpc-service, nats reply) in the background, pushctl
// request as a user types it, from a folder holding data/jwt-secret as
// make run leaves it.
func TestRequestRecipes(t *testing.T) {
	natsBin := natstest.CLI(t)
	pushctl := binary(t, "pushctl")
	rpc := binary(t, "rpc-service")
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))

	dir, bin := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "jwt-secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"nats": natsBin, "pushctl": pushctl} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"),
		"NATS_URL="+s.ClientURL(), "PUSHCTL_ADDR="+n.ws())

	doc, err := os.ReadFile("../docs/requests.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "go run ./examples/rpc-service") {
		t.Fatal("docs/requests.md no longer runs examples/rpc-service")
	}
	background(t, dir, env, "serving req.push.feed", rpc, "--nats", s.ClientURL(), "--interval", "10ms")

	commands := docCommands(t, "../docs/requests.md")
	if len(commands) != 5 {
		t.Fatalf("found %d commands in docs/requests.md: %q", len(commands), commands)
	}
	for _, line := range commands {
		if strings.HasPrefix(line, "nats reply") {
			background(t, dir, env, "Listening on", "sh", "-c", "exec "+line)
			continue
		}
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		t.Logf("$ %s\n%s", line, out)
		switch {
		case strings.HasSuffix(line, " feed 3"):
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			mustContain(t, line, out, "page 1 of 3 for alice\npage 2 of 3 for alice\npage 3 of 3 for alice\n")
		case strings.HasSuffix(line, " hello alice"):
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			mustContain(t, line, out, "hello alice, from the nats CLI\n")
		case strings.HasSuffix(line, " denied"):
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("%s: %v, want exit status 1", line, err)
			}
			mustContain(t, line, out, "error forbidden: not for you")
		default:
			t.Fatalf("no check for %s", line)
		}
	}
}
