package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// nodeProducerDir holds the Node example's package.json and lock file;
// make node-deps installs its dependencies there (npm ci).
const nodeProducerDir = "../examples/node-producer"

// The Node example of docs/pushing.md (From other languages), run as the
// page gives it, with the official NATS client examples/node-producer
// pins, against a real edge on a real NATS server: a push for a connected
// session is acknowledged enqueued by the node holding it and reaches the
// client with its id, payload, priority and content type; Push-Ack
// written and received are answered so; a push for a session no node
// holds is answered dead, offline, and parked in PUSH_DLQ with the same
// headers the Go producer client writes, so that replay delivers it once
// the session is back.
func TestNodeProducer(t *testing.T) {
	exe := nodePath(t)
	dir := nodeDeps(t)
	code := docBlock(t, "../docs/pushing.md", "js")
	file, err := os.ReadFile(filepath.Join(dir, "push.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if code != string(file) {
		t.Fatalf("docs/pushing.md's js block is not examples/node-producer/push.mjs: make them the same")
	}
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	alice := dial(t, n.ws(), "alice", client.Options{})
	run := func(env []string, args ...string) *nodePush {
		return startNodePush(t, exe, dir, code, s.ClientURL(), env, args...)
	}

	ack := run([]string{"PUSH_CONTENT_TYPE=application/json"}, "alice", "high", `{"invoice":42}`).ack(t, 0)
	if ack.Status != protocol.StatusEnqueued || ack.Node != "n1" || ack.ID == "" {
		t.Fatalf("ack %+v; want enqueued by n1, with the push id", ack)
	}
	f := recv(t, alice)
	if f.ID != ack.ID || string(f.Payload) != `{"invoice":42}` || f.ContentType != "application/json" || f.Priority != push.High {
		t.Fatalf("alice got %s %v %q (%s); want %s high {\"invoice\":42} (application/json)", f.ID, f.Priority, f.Payload, f.ContentType, ack.ID)
	}

	for _, mode := range []string{protocol.AckWritten, protocol.AckReceived} {
		p := run([]string{"PUSH_ACK=" + mode}, "alice", "low", "with "+mode)
		f := recv(t, alice) // and confirmed by the next Recv, or a moment after
		if ack := p.ack(t, 0); ack.Status != mode || ack.ID != f.ID || string(f.Payload) != "with "+mode || f.Priority != push.Low {
			t.Fatalf("Push-Ack %s: ack %+v, alice got %s %v %q; want %s for that push", mode, ack, f.ID, f.Priority, f.Payload, mode)
		}
	}

	// Nobody holds bob: NATS answers no responders, the program parks the
	// push and exits 1, as pushctl push does.
	ack = run([]string{"PUSH_CONTENT_TYPE=text/plain"}, "bob", "low", "parked by node").ack(t, 1)
	if ack.Status != protocol.StatusDead || ack.Reason != string(push.ReasonOffline) || ack.Node != "node-producer" || ack.ID == "" {
		t.Fatalf("ack %+v; want dead, offline, by node-producer", ack)
	}
	// The same push from the Go producer client, for carol: its dead
	// letter is the one to match.
	p := newProducer(t, natstest.Connect(t, s), "")
	if _, err := p.Push(timeout(t), "carol", push.Low, []byte("parked by go"), producer.WithContentType("text/plain")); err != nil {
		t.Fatal(err)
	}
	var fromNode, fromGo *deadLetter
	waitFor(t, "both dead letters", func() bool {
		fromNode, fromGo = nil, nil
		for _, dl := range deadLetters(t, s) {
			switch dl.Header.Get(protocol.HeaderSession) {
			case "bob":
				fromNode = &dl
			case "carol":
				fromGo = &dl
			}
		}
		return fromNode != nil && fromGo != nil
	})
	checkNodeDeadLetter(t, fromNode, ack.ID)
	if got, want := slices.Sorted(maps.Keys(fromNode.Header)), slices.Sorted(maps.Keys(fromGo.Header)); !slices.Equal(got, want) {
		t.Errorf("the Node dead letter's headers %q; the Go producer's %q", got, want)
	}

	// Bob is back: replay delivers the push as it was sent.
	bob := dial(t, n.tcp(), "bob", client.Options{})
	r, err := openStore(t, s).Replay(timeout(t), natstest.Connect(t, s), dlq.Filter{Session: "bob"}, dlq.ReplayOptions{})
	if err != nil || r.Replayed != 1 {
		t.Fatalf("replay for bob: %+v %v; want 1 replayed", r, err)
	}
	if f := recv(t, bob); f.ID != ack.ID || string(f.Payload) != "parked by node" || f.ContentType != "text/plain" || f.Priority != push.Low {
		t.Fatalf("bob got %s %v %q (%s) from the replay; want %s low \"parked by node\" (text/plain)", f.ID, f.Priority, f.Payload, f.ContentType, ack.ID)
	}
}

// checkNodeDeadLetter checks what DESIGN.md §6 asks of the dead letter of
// push id, for session bob, low, written by the Node example.
func checkNodeDeadLetter(t *testing.T, dl *deadLetter, id string) {
	t.Helper()
	h := dl.Header
	want := map[string]string{
		protocol.HeaderID: id, protocol.HeaderReason: string(push.ReasonOffline), protocol.HeaderSubject: "push.bob.low",
		protocol.HeaderSession: "bob", protocol.HeaderPriority: "low", protocol.HeaderNode: "node-producer",
		protocol.HeaderReplayCount: "0", protocol.HeaderContentType: "text/plain",
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("dead letter header %s: %q; want %q", k, got, v)
		}
	}
	if dl.Subject != "dlq.push.offline.bob.low" || string(dl.Data) != "parked by node" {
		t.Errorf("dead letter on %s with %q; want dlq.push.offline.bob.low with \"parked by node\"", dl.Subject, dl.Data)
	}
	if dead := h.Get(protocol.HeaderDeadID); dead == "" || h.Get(nats.MsgIdHdr) != dead {
		t.Errorf("Push-Dead-Id %q, Nats-Msg-Id %q: want one id, in both", dead, h.Get(nats.MsgIdHdr))
	}
	for _, k := range []string{protocol.HeaderDeadAt, protocol.HeaderSentAt} {
		if at, err := push.ParseTime(h.Get(k)); err != nil || time.Since(at).Abs() > testTimeout {
			t.Errorf("dead letter header %s: %q (%v); want an RFC 3339 time of this test", k, h.Get(k), err)
		}
	}
}

// nodeDeps is the Node example's folder, once its dependencies are
// installed at the versions its package.json pins. Without them the test
// fails, naming the make target, when PUSHFABRIC_REQUIRE_NODE is set (make
// unit, CI), and skips otherwise.
func nodeDeps(t *testing.T) string {
	t.Helper()
	var pkg struct{ Dependencies map[string]string }
	readJSON(t, filepath.Join(nodeProducerDir, "package.json"), &pkg)
	for name, version := range pkg.Dependencies {
		var dep struct{ Version string }
		b, err := os.ReadFile(filepath.Join(nodeProducerDir, "node_modules", name, "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &dep)
		}
		if err != nil || dep.Version != version {
			why := "examples/node-producer: " + name + "@" + version + " is not installed (run make node-deps: npm ci there)"
			if os.Getenv("PUSHFABRIC_REQUIRE_NODE") != "" {
				t.Fatalf("%s, and PUSHFABRIC_REQUIRE_NODE is set", why)
			}
			t.Skip(why)
		}
	}
	return nodeProducerDir
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// docBlock is the one fenced block of language lang in the document at
// path, as written.
func docBlock(t *testing.T, path, lang string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var b *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case b == nil && line == "```"+lang:
			b = new(strings.Builder)
		case b != nil && line == "```":
			blocks, b = append(blocks, b.String()), nil
		case b != nil:
			b.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 1 {
		t.Fatalf("%s has %d %s blocks; want one", path, len(blocks), lang)
	}
	return blocks[0]
}

// nodePush is the Node example running: code on node's stdin, as an ES
// module resolving its imports from dir's node_modules; killed if the
// test's timeout passes.
type nodePush struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

func startNodePush(t *testing.T, exe, dir, code, natsURL string, env []string, args ...string) *nodePush {
	t.Helper()
	p := &nodePush{cmd: exec.CommandContext(timeout(t), exe, append([]string{"--input-type=module", "-"}, args...)...)}
	p.cmd.Dir, p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = dir, strings.NewReader(code), &p.stdout, &p.stderr
	p.cmd.Env = append(os.Environ(), append(env, "NATS_URL="+natsURL)...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// ack waits for the program to exit with status code and returns the
// acknowledgement it printed.
func (p *nodePush) ack(t *testing.T, code int) protocol.Ack {
	t.Helper()
	err := p.cmd.Wait()
	if got := p.cmd.ProcessState.ExitCode(); got != code {
		t.Fatalf("node %q: %v; want exit status %d:\n%s%s", p.cmd.Args[2:], err, code, &p.stdout, &p.stderr)
	}
	var a protocol.Ack
	if err := json.Unmarshal(p.stdout.Bytes(), &a); err != nil {
		t.Fatalf("node %q printed %q: %v\n%s", p.cmd.Args[2:], &p.stdout, err, &p.stderr)
	}
	return a
}
