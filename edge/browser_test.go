package edge_test

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/push"
)

// nodeScript runs in Node.js's WHATWG WebSocket (the browser API) with
// clients/js/src/frames.js (the JavaScript client's codec): it holds
// session "js", asks for a countdown, and prints every frame it gets as
// one line.
const nodeScript = `
const { decode, encode, Type } = await import(process.argv[1]);
const ws = new WebSocket(process.argv[2] + "?session=js");
ws.binaryType = "arraybuffer";
ws.onmessage = (e) => {
  const f = decode(e.data);
  const body = new TextDecoder().decode(f.payload);
  console.log([f.type, f.priority, f.id, f.name, f.contentType, body].join("|"));
  if (f.type === Type.welcome) ws.send(encode({ type: Type.request, id: "r1", name: "countdown", payload: new TextEncoder().encode("2") }));
};
ws.onclose = (e) => console.log("closed|" + e.code + "|" + e.reason);
`

// The JavaScript client's frame codec decodes pushes and streamed
// responses, and sends requests, against a real edge.
func TestBrowserModule(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the frame codec is not exercised in a WebSocket")
	}
	countdown := func(ctx context.Context, r *edge.Request) (edge.Response, error) {
		return edge.Stream(func(yield func(edge.Frame, error) bool) {
			_ = yield(edge.Frame{ContentType: "text/plain", Payload: []byte("2")}, nil) &&
				yield(edge.Frame{ContentType: "text/plain", Payload: []byte("1")}, nil)
		}), nil
	}
	n := startNode(t, edge.DefaultConfig(), edge.Options{
		Handlers: map[string]edge.Handler{"countdown": countdown},
		Hooks: edge.Hooks{OnConnect: func(c *edge.Conn) error {
			return c.TryPush(push.Low, edge.Envelope{Frame: edge.Frame{ID: "p1", ContentType: "text/plain", Payload: []byte("héllo")}})
		}},
	})
	module, _ := filepath.Abs("../clients/js/src/frames.js")
	cmd := exec.Command(node, "--experimental-websocket", "--no-warnings", "--input-type=module", "-e", nodeScript, module, n.ws)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	want := []string{ // type|priority|id|name|content type|payload
		"10|high|js|edge||",
		"1|low|p1||text/plain|héllo",
		"3|high|r1||text/plain|2",
		"3|high|r1||text/plain|1",
		"4|high|r1|||",
	}
	for _, w := range want {
		if !lines.Scan() {
			t.Fatalf("node ended early (%v); want %q", lines.Err(), w)
		}
		if got := lines.Text(); got != w {
			t.Fatalf("node printed %q; want %q", got, w)
		}
	}
	n.stop(t)
	for lines.Scan() {
		if got := lines.Text(); strings.HasPrefix(got, "closed|") {
			if got != fmt.Sprintf("closed|%d|%s", 1001, "shutdown") {
				t.Fatalf("node saw %q; want closed|1001|shutdown", got)
			}
			break
		}
	}
	_ = cmd.Wait()
}
