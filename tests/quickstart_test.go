package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// checkout is a folder laid out as a clone after make run: ./bin holding
// edge, pushctl and the nats CLI, the folder the README's commands run in.
// The binaries are the ones built for the tests (hard links, so that the
// edge finds pushctl beside itself as make run's does).
func checkout(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"edge", "pushctl"} {
		if err := os.Link(binary(t, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err) // the tests' binaries and t.TempDir are both in TMPDIR
		}
	}
	if err := os.Symlink(natstest.CLI(t), filepath.Join(bin, "nats")); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// quickstartEnv is the environment the README's commands run in: every
// listener of the edge on a free port (the README's are fixed), no drain
// delay (no load balancer waits to see the node not ready), a home
// and nats CLI configuration of its own (no context of the machine's
// user), no make of ours.
func quickstartEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PUSHFABRIC_") && !strings.HasPrefix(k, "PUSHCTL_") &&
			!strings.HasPrefix(k, "NATS_") && k != "HOME" && k != "XDG_CONFIG_HOME" && !strings.HasPrefix(k, "MAKE") {
			env = append(env, kv)
		}
	}
	return append(append(env, homeEnv(dir)...), "PUSHFABRIC_DRAIN_DELAY=0", "PUSHFABRIC_WS_LISTEN=127.0.0.1:0", "PUSHFABRIC_TCP_LISTEN=127.0.0.1:0",
		"PUSHFABRIC_ADMIN_LISTEN=127.0.0.1:0", "PUSHFABRIC_NATS_LISTEN=127.0.0.1:0")
}

// makeRun starts the edge as make run does, in dir: the run target's
// commands as make prints them (make -n), with the binaries already in
// bin instead of its go install. It returns the edge and its banner.
func makeRun(t *testing.T, dir, bin string, env []string) (*process, string) {
	t.Helper()
	cmd := exec.Command("make", "-n", "run", "BIN="+bin)
	cmd.Dir, cmd.Env = "..", env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	var edge *process
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.Contains(line, " go install "):
			if !strings.Contains(line, "GOBIN="+bin) || !strings.HasSuffix(line, " ./cmd/edge ./cmd/pushctl") {
				t.Fatalf("make run installs %q; want ./cmd/edge and ./cmd/pushctl into %s", line, bin)
			}
		case strings.HasPrefix(line, bin+"/edge "):
			edge = startLine(t, dir, env, line)
		default:
			cmd := exec.Command("sh", "-c", line)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make run's %q: %v\n%s", line, err, out)
			}
		}
	}
	if edge == nil {
		t.Fatalf("make run starts no edge from %s:\n%s", bin, out)
	}
	end := regexp.MustCompile(`top --admin \S+\n`) // the banner's last line
	banner := edge.waitUntil(t, "print the whole banner", end.MatchString)
	return edge, banner[strings.Index(banner, "pushfabric edge "):]
}

// bannerAddr is what the banner gives after label, up to the end of
// the line or a space.
func bannerAddr(t *testing.T, banner, label string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `(\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("the banner gives no %q:\n%s", label, banner)
	}
	return m[1]
}

// openDemo loads the demo page at page, as a browser would, and connects
// as the page does: to the WebSocket of its own origin, with the query of
// the banner's URL. It returns the page's connection.
func openDemo(t *testing.T, ws, page, query string) *client.Conn {
	t.Helper()
	resp, err := http.Get(page + "?" + query)
	if err != nil {
		t.Fatalf("the demo page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<title>pushfabric demo</title>") {
		t.Fatalf("GET %s: %d %q; want the demo page", page, resp.StatusCode, body)
	}
	if origin := strings.TrimSuffix(page, "/demo/"); "ws"+strings.TrimPrefix(origin, "http")+"/" != ws {
		t.Fatalf("the demo page %s is not on the WebSocket listener %s", page, ws)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("the demo page's query %q: %v", query, err)
	}
	c, err := client.Dial(timeout(t), ws+"?token="+url.QueryEscape(q.Get("token")), client.Options{})
	if err != nil {
		t.Fatalf("the demo page's connection: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The README's quickstart, every command of its sh blocks in order, as a
// new user types them in a clone after make run: listeners, backends and
// pages in their own terminals (processes of their own), the rest one
// after the other, each checked against what the README says it does.
// The edge's listeners are on free ports (the environment sets them), and
// the commands reach them as written through the variables each tool
// reads (PUSHCTL_ADDR, NATS_URL, PUSHCTL_ADMIN); only the curl lines and
// the examples (run from their binaries, not go run) are given the
// addresses.
func TestQuickstart(t *testing.T) {
	dir, bin := checkout(t)
	env := quickstartEnv(dir)
	edge, banner := makeRun(t, dir, bin, env)
	ws := bannerAddr(t, banner, "WebSocket clients: ")
	natsURL := bannerAddr(t, banner, "producers and the nats CLI: ")
	admin := strings.TrimSuffix(bannerAddr(t, banner, "metrics and health: "), "/metrics")
	demo := regexp.MustCompile(`\n  (http://\S+/demo/)\?(\S+)\n`).FindStringSubmatch(banner)
	if demo == nil {
		t.Fatalf("the banner gives no demo page URL:\n%s", banner)
	}
	for _, want := range []string{
		"./bin/pushctl listen --secret-file data/jwt-secret --addr " + ws + " alice",
		"./bin/pushctl push --nats " + natsURL + " alice 'hello from pushctl'",
		"./bin/nats --server " + natsURL + " request push.alice.high 'hello from nats'",
		"./bin/pushctl request --secret-file data/jwt-secret --addr " + ws + " --session carol feed 3",
		"./bin/pushctl top --admin " + admin,
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	env = append(env, "PUSHCTL_ADDR="+ws, "NATS_URL="+natsURL, "PUSHCTL_ADMIN="+admin)
	addrs := strings.NewReplacer("127.0.0.1:9090", strings.TrimPrefix(admin, "http://"))

	lines := docLines(t, "../README.md")
	if len(lines) < 15 || lines[0].cmd != "make run" {
		t.Fatalf("the README's commands: %q", lines)
	}
	listeners := map[string]*process{} // pushctl listen, by session
	var browser *client.Conn
	var events *process // nats sub evt.push.>
	run := func(line string) (string, int) {
		t.Helper()
		return shell(t, dir, env, addrs.Replace(line))
	}
	expect := func(line string, code int, want ...string) {
		t.Helper()
		out, got := run(line)
		if got != code {
			t.Fatalf("%s: exit status %d, want %d:\n%s", line, got, code, out)
		}
		mustContain(t, line, []byte(out), want...)
	}
	for _, l := range lines[1:] {
		line := l.cmd
		switch {
		case line == "make test": // what CI runs: not from inside it
		case line == "make nats":
			cmd := exec.Command("make", "nats", "BIN="+bin) // ./bin/nats is there: nothing to install
			cmd.Dir, cmd.Env = "..", env
			if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "go install") {
				t.Fatalf("make nats: %v\n%s", err, out)
			}
		case strings.HasPrefix(line, "./bin/pushctl listen "):
			session := line[strings.LastIndex(line, " ")+1:]
			listeners[session] = startLine(t, dir, env, line)
			listeners[session].waitFor(t, fmt.Sprintf("listening as session %q", session))
		case strings.HasPrefix(line, "./bin/pushctl push alice "):
			expect(line, 0, "enqueued on node")
			listeners["alice"].waitFor(t, "hello from pushctl")
		case strings.HasPrefix(line, "./bin/nats request push.alice.high "):
			expect(line, 0)
			listeners["alice"].waitFor(t, "hello from nats")
		case strings.HasPrefix(line, "./bin/pushctl push bob "):
			expect(line, 1, "dead: offline")
		case line == "./bin/pushctl dlq ls":
			expect(line, 0, "offline", "bob")
		case line == "./bin/nats stream subjects PUSH_DLQ":
			expect(line, 0, "dlq.push.offline.bob.high")
		case line == "./bin/pushctl dlq replay --session bob":
			expect(line, 0, "replayed 1, still offline 0")
			listeners["bob"].waitFor(t, "are you there?")
		case line == "go run ./examples/rpc-service":
			background(t, dir, env, "serving req.push.feed", binary(t, "rpc-service"), "--nats", natsURL)
		case strings.HasPrefix(line, "./bin/pushctl request ") && strings.HasSuffix(line, " --session carol feed 3"):
			expect(line, 0, "page 1 of 3 for carol", "page 3 of 3 for carol")
		case strings.HasPrefix(line, "./bin/pushctl push browser "):
			browser = openDemo(t, ws, demo[1], demo[2])
			expect(line, 0, "enqueued on node")
			if f := recv(t, browser); string(f.Payload) != "hello from pushctl" || browser.Session() != "browser" {
				t.Errorf("the page's session %q got %q", browser.Session(), f.Payload)
			}
		case strings.HasPrefix(line, "./bin/nats reply 'req.push.hello' "):
			background(t, dir, env, "Listening on", "sh", "-c", "exec "+line)
		case strings.HasPrefix(line, "./bin/pushctl request ") && strings.HasSuffix(line, " hello world"):
			expect(line, 0, "hello world")
		case line == "./bin/pushctl top":
			top := startLine(t, dir, env, line)
			top.waitFor(t, "ready")
			if err := top.interrupt(t, syscall.SIGINT); err != nil {
				t.Errorf("pushctl top after Ctrl-C: %v", err)
			}
		case strings.HasPrefix(line, "curl -s 127.0.0.1:9090/metrics"):
			expect(line, 0, "pushfabric_pushes_received_total")
		case line == "curl -s 127.0.0.1:9090/readyz":
			expect(line, 0, "ready")
		case line == "./bin/nats sub 'evt.push.>'":
			events = startLine(t, dir, env, line)
			events.waitFor(t, "Subscribing on evt.push.>")
		case strings.HasPrefix(line, "./bin/pushctl push --group user-dana "):
			expect(line, 0, "enqueued for 2 members of user-dana on 1 node")
			listeners["dana-laptop"].waitFor(t, "one push, every device")
			listeners["dana-phone"].waitFor(t, "one push, every device")
		case line == "./bin/pushctl presence --group user-dana":
			expect(line, 0, "dana-laptop: online", "dana-phone: online", "2 members of user-dana on 1 node")
		case line == "./bin/pushctl presence alice":
			expect(line, 0, "alice: online on node", "over websocket")
		case line == "./bin/pushctl sessions":
			expect(line, 0, "alice", "browser", "websocket")
		case line == "./bin/pushctl kick alice":
			expect(line, 0, "alice: kicked")
			listeners["alice"].waitFor(t, "revoked")
			events.waitFor(t, "evt.push.alice.disconnected")
		default:
			t.Fatalf("no check for the README's %q", line)
		}
	}
	alice := listeners["alice"]
	if out := alice.output(); strings.Contains(out, "replaced") {
		t.Fatalf("alice's listener was replaced:\n%s", out)
	}
	// Ctrl-C in the make run terminal: clients are told shutdown (bob's
	// listener still runs; alice's was kicked), and the edge exits 0.
	if err := edge.interrupt(t, syscall.SIGINT); err != nil {
		t.Errorf("the edge after Ctrl-C: %v", err)
	}
	listeners["bob"].waitFor(t, "shutdown")
}
