package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The tests here run the JavaScript client (clients/js) in real Chromium,
// loaded from an edge's demo page (--demo) as any page of that origin
// loads it, against real edges on a real NATS server.

// demoEdge is a node on s with the demo page (--demo), named name,
// listening for WebSocket clients on ws ("": a free port).
func demoEdge(t *testing.T, s *server.Server, name, ws string) *edgeNode {
	cfg := edgeConfig(t, s, name)
	cfg.Demo = true
	if ws != "" {
		cfg.WSListen = ws
	}
	return startEdge(t, cfg)
}

// demoURL is the address of the node's demo page, with query.
func demoURL(n *edgeNode, query string) string {
	return fmt.Sprintf("http://%s/demo/%s", n.Addr("websocket"), query)
}

// wsAddr is the node's WebSocket listener, host:port.
func wsAddr(n *edgeNode) string { return n.Addr("websocket").String() }

// pageSetup starts the JavaScript client in the page, as session token's,
// imported from the demo page's copy of clients/js/src, keeping what it sees
// in window.pf; it resolves once the client is connected. Reconnects wait
// at most 200 ms, then 400, … 1 s.
const pageSetup = `(async (token) => {
  const m = await import("/demo/lib/index.js");
  const pf = window.pf = { pushes: [], states: [], receipts: [], errors: [] };
  pf.client = m.connect(location.origin + "/", {
    token,
    reconnect: { baseDelay: 200, maxDelay: 1000 },
    onPush: (p) => { pf.pushes.push({ id: p.id, priority: p.priority, text: p.text(), wantsReceipt: p.wantsReceipt }); },
    onState: (s) => { pf.states.push(s); },
    onReceipt: (ids) => { pf.receipts.push(...ids); },
    onError: (e) => { pf.errors.push(String(e)); },
  });
  const { node } = await pf.client.whenConnected();
  return node;
})`

// pageView is what the page's client has seen (window.pf).
type pageView struct {
	Pushes []struct {
		ID, Priority, Text string
		WantsReceipt       bool
	}
	States []struct {
		State, Reason, Message, Session, Node string
	}
	Receipts   []string
	Errors     []string
	Duplicates int
	State      string // the client's state now
	Node       string
}

// ids are the ids of the pushes shown, in order.
func (v pageView) ids(priority string) []string {
	var ids []string
	for _, p := range v.Pushes {
		if priority == "" || p.Priority == priority {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// startPageClient opens the demo origin of the node named name, whose
// WebSocket listener is ws (host:port), in Chromium and starts the
// JavaScript client in it as session; it returns the page once the client
// holds the session.
func startPageClient(t *testing.T, exe, ws, name, session string) context.Context {
	ctx := openPage(t, exe, "http://"+ws+"/demo/") // no token: the demo page itself does not connect
	if node := evalPage[string](t, ctx, fmt.Sprintf("%s(%q)", pageSetup, mint(t, session))); node != name {
		t.Fatalf("the page's client is on node %q; want %q", node, name)
	}
	return ctx
}

// evalPage evaluates expr in the page, awaiting the promise it returns.
func evalPage[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("in the page: %v\n%s", err, expr)
	}
	return v
}

// view reads what the page's client has seen.
func view(t *testing.T, ctx context.Context) pageView {
	t.Helper()
	raw := evalPage[[]byte](t, ctx, `({ ...pf, client: undefined, duplicates: pf.client.duplicates, state: pf.client.state, node: pf.client.node })`)
	var v pageView
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("the page's view %s: %v", raw, err)
	}
	return v
}

// waitView waits until ok holds of what the page's client has seen, and
// returns it.
func waitView(t *testing.T, ctx context.Context, what string, ok func(pageView) bool) pageView {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(20 * time.Millisecond) {
		v := view(t, ctx)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's client never %s: %+v", what, v)
		}
	}
}

// pushWithAck publishes a push to session over NATS, with Push-Ack: ack
// ("" for none), and returns the edge's ack.
func pushWithAck(t *testing.T, nc *nats.Conn, session, prio, id, ack string) protocol.Ack {
	t.Helper()
	m := pushMsg(session, prio, id, "payload of "+id)
	if ack != "" {
		m.Header.Set(protocol.HeaderAck, ack)
	}
	reply, err := nc.RequestMsg(m, testTimeout)
	if err != nil {
		t.Fatalf("push %s: %v", id, err)
	}
	var a protocol.Ack
	if err := json.Unmarshal(reply.Data, &a); err != nil {
		t.Fatalf("push %s: ack %q: %v", id, reply.Data, err)
	}
	return a
}

// The library in a page receives high and low pushes, each priority in the
// order published, each once; it confirms every push (each asked for a
// receipt), and the producer gets received.
func TestPageClientPushesInOrder(t *testing.T) {
	exe := chromiumPath(t)
	s := natstest.Server(t)
	n := demoEdge(t, s, "page-1", "")
	ctx := startPageClient(t, exe, wsAddr(n), "page-1", "page")
	nc := natstest.Connect(t, s)
	ack, status := protocol.AckReceived, protocol.StatusReceived
	var high, low []string
	for i := 1; i <= 10; i++ {
		prio, list := "high", &high
		if i%2 == 0 {
			prio, list = "low", &low
		}
		id := fmt.Sprintf("%s-%d", prio, i)
		*list = append(*list, id)
		if a := pushWithAck(t, nc, "page", prio, id, ack); a.Status != status {
			t.Fatalf("push %s: ack %+v; want %s", id, a, status)
		}
	}
	v := waitView(t, ctx, "showed 10 pushes", func(v pageView) bool { return len(v.Pushes) >= 10 })
	if got := v.ids("high"); !slices.Equal(got, high) {
		t.Errorf("high pushes %q; want %q", got, high)
	}
	if got := v.ids("low"); !slices.Equal(got, low) {
		t.Errorf("low pushes %q; want %q", got, low)
	}
	for _, p := range v.Pushes {
		if p.Text != "payload of "+p.ID || !p.WantsReceipt {
			t.Errorf("push %+v; want its payload, a receipt asked for", p)
		}
	}
	v = waitView(t, ctx, "confirmed the 10 pushes", func(v pageView) bool { return len(v.Receipts) >= 10 })
	if want := v.ids(""); !slices.Equal(slices.Sorted(slices.Values(v.Receipts)), slices.Sorted(slices.Values(want))) {
		t.Errorf("receipts %q; want each of %q once", v.Receipts, want)
	}
}

// When its node, the edge binary, is stopped with SIGTERM (its clients
// closed with reason shutdown), the library in a page reconnects to the
// next node started on the same address on the same NATS: every push
// published before and after is shown once, and a producer's resend of a
// push id it has shown is dropped.
func TestPageClientReconnects(t *testing.T) {
	exe := chromiumPath(t)
	s := natstest.Server(t)
	n1 := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--node", "page-1", "--demo",
		"--ws-listen", "127.0.0.1:0", "--tcp-listen", "", "--jwt-secret-file", writeSecret(t))
	ctx := startPageClient(t, exe, n1.addr("websocket"), "page-1", "roamer")
	nc := natstest.Connect(t, s)
	ack, status := protocol.AckReceived, protocol.StatusReceived
	var want []string
	send := func(id string) {
		t.Helper()
		if a := pushWithAck(t, nc, "roamer", "high", id, ack); a.Status != status {
			t.Fatalf("push %s: ack %+v; want %s", id, a, status)
		}
	}
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf("p%d", i))
		send(want[i-1])
	}
	waitView(t, ctx, "showed p1…p5", func(v pageView) bool { return len(v.Pushes) >= 5 })

	if _, err := n1.stop(t); err != nil {
		t.Fatalf("edge page-1 after SIGTERM: %v", err)
	}
	waitView(t, ctx, "was told shutdown", func(v pageView) bool {
		return slices.ContainsFunc(v.States, func(s struct{ State, Reason, Message, Session, Node string }) bool {
			return s.State == "disconnected" && s.Reason == "shutdown"
		})
	})
	demoEdge(t, s, "page-2", n1.addr("websocket"))
	waitView(t, ctx, "reconnected to page-2", func(v pageView) bool { return v.State == "connected" && v.Node == "page-2" })
	send("p3") // a producer's resend: shown already
	for i := 6; i <= 10; i++ {
		want = append(want, fmt.Sprintf("p%d", i))
		send(want[i-1])
	}
	v := waitView(t, ctx, "showed p10", func(v pageView) bool { return slices.Contains(v.ids(""), "p10") })
	if got := v.ids(""); !slices.Equal(got, want) || v.Duplicates != 1 {
		t.Fatalf("the page showed %q, %d repeats dropped; want %q, 1 (the resend of p3)", got, v.Duplicates, want)
	}
	if len(v.Errors) > 0 {
		t.Errorf("the page's client reported %q", v.Errors)
	}
}

// A second connection of the session closes the page's with reason
// replaced, and the library stops there: it does not reconnect (which
// would take the session back), and says why.
func TestPageClientReplacedStops(t *testing.T) {
	exe := chromiumPath(t)
	s := natstest.Server(t)
	n := demoEdge(t, s, "page-1", "")
	ctx := startPageClient(t, exe, wsAddr(n), "page-1", "tab")
	other := dial(t, n.ws(), "tab", client.Options{})
	v := waitView(t, ctx, "stopped", func(v pageView) bool { return v.State == "stopped" })
	last := v.States[len(v.States)-1]
	if last.Reason != "replaced" {
		t.Fatalf("the page's client stopped with %+v; want reason replaced", last)
	}
	// Five times the page's longest first wait before a reconnect: it stays
	// stopped, and the session stays with the other connection.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got := view(t, ctx); len(got.States) != len(v.States) {
			t.Fatalf("the page's client went on after replaced: %+v", got.States)
		}
	}
	publish(t, s, "tab", "after", "for the other tab")
	if f := recv(t, other); f.ID != "after" {
		t.Fatalf("the other connection got %+v; want push after", f)
	}
	if got := view(t, ctx); len(got.Pushes) != 0 {
		t.Fatalf("the replaced page got %+v", got.Pushes)
	}
}

// The library in a page sends a request and yields its streamed reply;
// leaving the loop early cancels the stream on the edge, and so does an
// AbortSignal; the connection goes on.
func TestPageClientRequests(t *testing.T) {
	exe := chromiumPath(t)
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	serve(t, nc, "feed", feed)
	serve(t, nc, "ticks", ticks)
	n := demoEdge(t, s, "page-1", "")
	ctx := startPageClient(t, exe, wsAddr(n), "page-1", "asker")

	pages := evalPage[[]string](t, ctx, `(async () => {
  const out = [];
  for await (const f of pf.client.request("feed", "3")) out.push(f.text());
  return out;
})()`)
	if want := []string{"page 1 of 3 for asker", "page 2 of 3 for asker", "page 3 of 3 for asker"}; !slices.Equal(pages, want) {
		t.Fatalf("feed: %q; want %q", pages, want)
	}

	before := canceledStreams(t, n)
	ticked := evalPage[[]string](t, ctx, `(async () => {
  const out = [];
  for await (const f of pf.client.request("ticks", "")) { out.push(f.text()); if (out.length === 3) break; }
  return out;
})()`)
	if want := []string{"tick 1", "tick 2", "tick 3"}; !slices.Equal(ticked, want) {
		t.Fatalf("ticks until a break: %q; want %q", ticked, want)
	}
	waitCanceled(t, n, before+1)

	aborted := evalPage[string](t, ctx, `(async () => {
  const ac = new AbortController();
  let n = 0;
  try {
    for await (const f of pf.client.request("ticks", "", { signal: ac.signal })) if (++n === 2) ac.abort(new Error("enough"));
    return "ended";
  } catch (err) {
    return n + " " + err.message;
  }
})()`)
	if aborted != "2 enough" {
		t.Fatalf("ticks aborted after two: %q; want the signal's reason after 2", aborted)
	}
	waitCanceled(t, n, before+2)
	if v := view(t, ctx); v.State != "connected" || len(v.States) != 2 || len(v.Errors) != 0 {
		t.Fatalf("after the requests the client is %s (states %+v, errors %q); want connected all along", v.State, v.States, v.Errors)
	}
}

// canceledStreams is the node's count of response streams their clients
// canceled.
func canceledStreams(t *testing.T, n *edgeNode) float64 {
	t.Helper()
	_, mfs := scrape(t, n)
	if mfs["pushfabric_response_streams_total"] == nil {
		return 0
	}
	var sum float64
	for _, m := range mfs["pushfabric_response_streams_total"].Metric {
		if matches(m, []string{"outcome=canceled"}) {
			sum += m.Counter.GetValue()
		}
	}
	return sum
}

func waitCanceled(t *testing.T, n *edgeNode, want float64) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); canceledStreams(t, n) < want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the node counted %v canceled response streams; want %v", canceledStreams(t, n), want)
		}
	}
}

// pageText is the text of the element the CSS selector sel finds, "" if
// none.
func pageText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return evalPage[string](t, ctx, fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ""`, sel))
}

// waitText waits until the element sel finds has text containing want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); !strings.Contains(pageText(t, ctx, sel), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the page's %s shows %q; want %q\nits log: %s", sel, pageText(t, ctx, sel), want, pageText(t, ctx, "#log"))
		}
	}
}

// click sets the inputs (selector → value) and clicks the button sel.
func click(t *testing.T, ctx context.Context, sel string, inputs map[string]string) {
	t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for in, v := range inputs {
		steps = append(steps, chromedp.SetValue(chromedp.CSS(in), v))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(sel)))
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// The demo page, opened as the make run banner prints it (/demo/?token=…),
// holds its session, shows a push published over NATS with its priority
// (and that its receipt went back and the producer got received), a
// request's streamed reply and a cancel;
// and when its node shuts down it shows the close reason. A screenshot is
// kept (demo-page.png).
func TestDemoPage(t *testing.T) {
	exe := chromiumPath(t)
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	serve(t, nc, "feed", feed)
	serve(t, nc, "ticks", ticks)
	n := demoEdge(t, s, "demo-node", "")
	ctx := openPage(t, exe, demoURL(n, "?token="+mint(t, "browser")))
	waitText(t, ctx, "#where", "session browser on node demo-node")

	ack, status := protocol.AckReceived, protocol.StatusReceived
	if a := pushWithAck(t, nc, "browser", "high", "d1", ack); a.Status != status {
		t.Fatalf("push d1: ack %+v; want %s", a, status)
	}
	if a := pushWithAck(t, nc, "browser", "low", "d2", ack); a.Status != status {
		t.Fatalf("push d2: ack %+v; want %s", a, status)
	}
	waitText(t, ctx, `#pushes li[data-id="d1"][data-priority="high"]`, "d1: payload of d1")
	waitText(t, ctx, `#pushes li[data-id="d2"][data-priority="low"]`, "d2: payload of d2")
	waitText(t, ctx, `#pushes li[data-id="d2"][data-receipt="sent"]`, "receipt")
	waitText(t, ctx, "#receipts", "d2")

	click(t, ctx, "#send", map[string]string{"#method": "feed", "#payload": "3"})
	waitText(t, ctx, "#reply-status", "feed: ended")
	waitText(t, ctx, "#replies", "page 1 of 3 for browserpage 2 of 3 for browserpage 3 of 3 for browser")
	screenshot(t, ctx, "demo-page.png")

	click(t, ctx, "#send", map[string]string{"#method": "ticks", "#payload": "-"})
	waitText(t, ctx, "#replies", "tick 2")
	click(t, ctx, "#cancel", nil)
	waitText(t, ctx, "#reply-status", "ticks: canceled")

	n.shutdown(t)
	// The page's log keeps each state; its close reason shows only the
	// latest, which a failed reconnect a few ms later replaces (network).
	waitText(t, ctx, "#log", "disconnected: shutdown")
	waitText(t, ctx, "#state", "disconnected")
}

// The demo page and the library are served on the WebSocket listener
// with --demo only, at /demo/ and /demo/lib/; every other plain GET is
// refused (400) as without it.
func TestDemoServedOnlyWhenAsked(t *testing.T) {
	s := natstest.Server(t)
	get := func(url string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	on := demoEdge(t, s, "demo-on", "")
	for path, want := range map[string]string{
		"/demo/":              "<title>pushfabric demo</title>",
		"/demo/demo.js":       `from "./lib/index.js"`,
		"/demo/lib/index.js":  `from "./client.js"`,
		"/demo/lib/frames.js": "export function decode",
	} {
		code, ctype, body := get(fmt.Sprintf("http://%s%s", on.Addr("websocket"), path))
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("--demo: GET %s: %d %q; want 200 with %q", path, code, body, want)
		}
		if strings.HasSuffix(path, ".js") && !strings.HasPrefix(ctype, "text/javascript") {
			t.Errorf("--demo: GET %s: Content-Type %q; want text/javascript (browsers load no module otherwise)", path, ctype)
		}
	}
	if code, _, _ := get(fmt.Sprintf("http://%s/", on.Addr("websocket"))); code != http.StatusBadRequest {
		t.Errorf("--demo: GET /: %d; want 400", code)
	}
	off := startEdge(t, edgeConfig(t, s, "demo-off"))
	for _, path := range []string{"/demo/", "/demo/lib/index.js", "/"} {
		if code, _, _ := get(fmt.Sprintf("http://%s%s", off.Addr("websocket"), path)); code != http.StatusBadRequest {
			t.Errorf("without --demo: GET %s: %d; want 400", path, code)
		}
	}
}
