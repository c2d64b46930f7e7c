package tests

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// pushctl push --lines sends the pushes of its standard input, one JSON
// object a line, in batches: each push reaches its client as the line
// said (payload as text, as JSON or from base64; headers; priority), one
// for a session nobody holds is dead offline and parked, and a line that
// is no push is refused, saying why, while the others still go. The
// summary counts them all; the exit status is 1 unless all went through.
func TestPushctlPushLines(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	alice := dial(t, n.tcp(), "alice", client.Options{})
	bob := dial(t, n.tcp(), "bob", client.Options{})
	input := strings.Join([]string{
		`{"session":"alice","payload":"hello","headers":{"Push-Id":"l1","Content-Type":"text/plain"}}`,
		``,
		`{"session":"bob","priority":"low","payload":{"n": 1},"headers":{"Push-Id":"l3","Push-Ack":"written"}}`,
		`{"session":"carol","payload":"parked","headers":{"Push-Id":"l4"}}`,
		`not json`,
		`{"session":"alice","payload":"x","payload_base64":"eA=="}`,
		`{"session":"a.b","payload":"x"}`,
		`{"session":"alice","payload_base64":"AAEC","headers":{"Push-Id":"l8"}}`,
		`{"session":"alice","payload":"x","headers":{"Nats-Msg-Id":"x"}}`,
		`{"session":"alice","payload":"` + strings.Repeat("x", 5<<20) + `"}`,
		`{"session":"alice","payload":"x","priority":"urgent"}`,
		`{"session":"alice","payload":"x","colour":"red"}`,
		`{"session":"bob","payload":"end","headers":{"Push-Id":"l13"}}`, // no newline after the last
	}, "\r\n")
	r := runToolInput(t, nil, input, "pushctl", "push", "--lines", "--batch", "2", "--nats", s.ClientURL())
	if r.code != 1 {
		t.Fatalf("exit %d; want 1 (refused and dead lines):\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "line 4: dead: offline (push l4, dead-lettered by pushctl)\nline 5: refused") {
		t.Errorf("stdout not in the lines' order:\n%s", r.stdout)
	}
	for _, want := range []string{
		"line 4: dead: offline (push l4, dead-lettered by pushctl)",
		"line 5: refused: not a push as JSON",
		`line 6: refused: "payload" and "payload_base64": give one`,
		"line 7: refused: ",
		"line 9: refused: header Nats-Msg-Id: NATS's own",
		"line 10: refused: longer than 4194304 bytes",
		`line 11: refused: priority "urgent": want high or low`,
		`line 12: refused: not a push as JSON: json: unknown field "colour"`,
		"12 lines: 3 enqueued, 1 written, 1 dead (offline 1), 7 refused\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, f := range []struct {
		c                    *client.Conn
		id, payload, ct, pri string
	}{{alice, "l1", "hello", "text/plain", "high"}, {alice, "l8", "\x00\x01\x02", "", "high"}, {bob, "l3", `{"n": 1}`, "", "low"}, {bob, "l13", "end", "", "high"}} {
		got := recv(t, f.c)
		if got.ID != f.id || string(got.Payload) != f.payload || got.ContentType != f.ct || got.Priority.String() != f.pri {
			t.Errorf("got push %s %q %q %s; want %s %q %q %s", got.ID, got.Payload, got.ContentType, got.Priority, f.id, f.payload, f.ct, f.pri)
		}
	}
	waitFor(t, "l4's dead letter", func() bool {
		for _, dl := range deadLetters(t, s) {
			if dl.Header.Get(protocol.HeaderID) == "l4" && dl.Header.Get(protocol.HeaderReason) == "offline" && string(dl.Data) == "parked" {
				return true
			}
		}
		return false
	})

	// --json: a result a line, the summary last; all through: exit 0.
	r = runToolInput(t, nil, `{"session":"alice","payload":"j","headers":{"Push-Id":"j1"}}`+"\n", "pushctl", "push", "--lines", "--json",
		"--nats", s.ClientURL())
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res struct {
		Line   int    `json:"line"`
		Status string `json:"status"`
		Node   string `json:"node"`
		ID     string `json:"id"`
	}
	var sum struct {
		Summary struct{ Lines, Enqueued int } `json:"summary"`
	}
	if r.code != 0 || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &res) != nil || json.Unmarshal([]byte(lines[1]), &sum) != nil ||
		res != (struct {
			Line   int    `json:"line"`
			Status string `json:"status"`
			Node   string `json:"node"`
			ID     string `json:"id"`
		}{1, "enqueued", "n1", "j1"}) || sum.Summary.Lines != 1 || sum.Summary.Enqueued != 1 {
		t.Fatalf("--json: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := recv(t, alice); got.ID != "j1" {
		t.Fatalf("got %s; want j1", got.ID)
	}
	// --lines takes no session, no --id.
	for _, args := range [][]string{{"push", "--lines", "alice"}, {"push", "--lines", "--id", "x"}, {"push", "--lines", "--all"}, {"push", "--lines", "--batch", "0"}} {
		if r := runTool(t, nil, "pushctl", append(args, "--nats", s.ClientURL())...); r.code != 2 || !strings.Contains(r.stderr, "--") {
			t.Errorf("pushctl %q: exit %d; want 2 with a usage line:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// A script that writes its pushes now and then into pushctl push --lines
// (a pipe that stays open) has each sent when it is written, not once a
// batch's worth has piled up or the pipe closes.
func TestPushctlPushLinesFromASlowWriter(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	alice := dial(t, n.tcp(), "alice", client.Options{})
	cmd := exec.Command(binary(t, "pushctl"), "push", "--lines", "--nats", s.ClientURL())
	cmd.Env = toolEnv(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := range 3 {
		id := fmt.Sprintf("slow-%d", i)
		if _, err := fmt.Fprintf(stdin, `{"session":"alice","payload":"p","headers":{"Push-Id":%q}}`+"\n", id); err != nil {
			t.Fatal(err)
		}
		if f := recv(t, alice); f.ID != id { // before the next line is written, the pipe still open
			t.Fatalf("got %s; want %s", f.ID, id)
		}
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "3 lines: 3 enqueued") {
		t.Fatalf("pushctl push --lines: %v:\n%s", err, out.String())
	}
}
