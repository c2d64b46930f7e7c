package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// commentPairs are the "key":value pairs of a comment's JSON that say
// something (a value of … stands for anything).
var commentPairs = regexp.MustCompile(`"[a-z_]+":(?:"(?:[^"\\]|\\.)*"|\d+|true|false)`)

// commentStatus is the status code a curl line's comment gives after
// its JSON.
var commentStatus = regexp.MustCompile(`\} (\d{3})\b`)

// dataBinary is the payload a curl line sends, and path its route.
var (
	dataBinary = regexp.MustCompile(`--data-binary '([^']*)'`)
	pushPath   = regexp.MustCompile(`/v1/push/(group/)?([A-Za-z0-9_-]+)/`)
)

// The commands of docs/http.md, in order, as written, as a new user types
// them in a clone after make run: pushhttp serve and the listeners in
// their own terminals, the rest one after the other. Each curl line is
// held to its comment: the status code and every "key":value of the JSON
// it shows (… stands for anything), and a push it says was taken reaches
// the listeners it was for. The edge's listeners are on free ports, as in
// TestQuickstart; pushhttp's too (PUSHHTTP_LISTEN), and the curl lines
// are given its address. The first pushhttp serve is stopped with Ctrl-C
// (SIGINT) before the second starts, as the page says: it exits 0.
func TestHTTPRecipes(t *testing.T) {
	dir, bin := httpCheckout(t)
	var env []string
	for _, kv := range quickstartEnv(dir) {
		if !strings.HasPrefix(kv, "PUSHHTTP_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PUSHHTTP_LISTEN=127.0.0.1:0")
	edge, banner := makeRun(t, dir, bin, env)
	env = append(env, "PUSHCTL_ADDR="+bannerAddr(t, banner, "WebSocket clients: "), "NATS_URL="+bannerAddr(t, banner, "producers and the nats CLI: "))

	var serve *process
	addr := strings.NewReplacer() // 127.0.0.1:8088 → where pushhttp listens
	listeners := map[string]*process{}
	run := func(line string) (string, int) {
		t.Helper()
		return shell(t, dir, env, addr.Replace(line))
	}
	lines := docLines(t, "../docs/http.md")
	if len(lines) < 25 {
		t.Fatalf("the commands of docs/http.md: %q", lines)
	}
	for _, l := range lines {
		line := l.cmd
		switch {
		case line == "make build": // the binaries are in bin
		case strings.HasPrefix(line, "./bin/pushhttp serve "):
			if serve != nil {
				stopServe(t, serve)
			}
			serve = startLine(t, dir, env, line)
			addr = strings.NewReplacer("127.0.0.1:8088", serveAddr(t, serve))
		case strings.HasPrefix(line, "./bin/pushctl listen "):
			session := line[strings.LastIndex(line, " ")+1:]
			listeners[session] = startLine(t, dir, env, line)
			listeners[session].waitFor(t, `listening as session "`+session+`"`)
		case strings.HasPrefix(line, "curl ") || strings.Contains(line, "| curl "):
			out, code := run(line)
			if code != 0 {
				t.Fatalf("%s: exit status %d", line, code)
			}
			checkCurl(t, l, out, listeners)
		case line == "./bin/pushctl dlq ls":
			if out, code := run(line); code != 0 || !strings.Contains(out, "offline  bob") {
				t.Fatalf("%s: exit status %d:\n%s", line, code, out)
			}
		case strings.HasPrefix(line, "./bin/pushhttp key "), strings.HasPrefix(line, "./bin/pushhttp token "), strings.HasPrefix(line, "head -c 48 "):
			if out, code := run(line); code != 0 {
				t.Fatalf("%s: exit status %d:\n%s", line, code, out)
			}
		default:
			t.Fatalf("no check for docs/http.md's %q", line)
		}
	}
	stopServe(t, serve)
	if err := edge.interrupt(t, syscall.SIGINT); err != nil {
		t.Errorf("the edge after Ctrl-C: %v", err)
	}
}

// httpCheckout is a folder laid out as a clone after make run and make
// build, as far as docs/http.md goes: ./bin holding edge, pushctl and
// pushhttp (hard links to the tests' binaries), no nats CLI needed.
func httpCheckout(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"edge", "pushctl", "pushhttp"} {
		if err := os.Link(binary(t, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, bin
}

// serveAddr is where a pushhttp serve listens, from its start line.
func serveAddr(t *testing.T, p *process) string {
	t.Helper()
	log := p.waitFor(t, `"msg":"pushhttp started"`)
	for _, l := range strings.Split(log, "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["msg"] == "pushhttp started" {
			if a, _ := line["listen"].(string); a != "" {
				return a
			}
		}
	}
	t.Fatalf("no listen address in:\n%s", log)
	return ""
}

// stopServe is Ctrl-C in pushhttp serve's terminal: it exits 0, and says
// it stopped.
func stopServe(t *testing.T, p *process) {
	t.Helper()
	if err := p.interrupt(t, syscall.SIGINT); err != nil {
		t.Fatalf("pushhttp serve after Ctrl-C: %v\n%s", err, p.output())
	}
	if out := p.output(); !strings.Contains(out, `"msg":"pushhttp stopped"`) {
		t.Fatalf("pushhttp serve did not say it stopped:\n%s", out)
	}
}

// checkCurl holds a curl line's output to its comment: the status code,
// each "key":value shown, and, for a push taken (2xx), its payload in the
// output of the listeners it was for.
func checkCurl(t *testing.T, l docLine, out string, listeners map[string]*process) {
	t.Helper()
	m := commentStatus.FindStringSubmatch(l.comment)
	if m == nil {
		t.Fatalf("%s: its comment %q gives no status code", l.cmd, l.comment)
	}
	if f := strings.Fields(out); len(f) == 0 || f[len(f)-1] != m[1] {
		t.Fatalf("%s: %s; want status %s", l.cmd, out, m[1])
	}
	for _, pair := range commentPairs.FindAllString(l.comment, -1) {
		if !strings.Contains(pair, "…") && !strings.Contains(out, pair) {
			t.Fatalf("%s: %s lacks %s", l.cmd, out, pair)
		}
	}
	data, path := dataBinary.FindStringSubmatch(l.cmd), pushPath.FindStringSubmatch(l.cmd)
	if m[1][0] != '2' || data == nil || path == nil || strings.HasPrefix(data[1], "[") {
		return
	}
	var to []string
	switch {
	case path[1] != "": // a group
		to = []string{"dana-laptop", "dana-phone"}
	case path[2] == "all":
		to = []string{"alice", "dana-laptop", "dana-phone"}
	default:
		to = []string{path[2]}
	}
	for _, session := range to {
		listeners[session].waitFor(t, ": "+data[1]+"\n")
	}
}
