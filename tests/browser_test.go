package tests

import (
	"context"
	"fmt"
	"iter"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/examples/browser"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// chromiumPath is the Chromium (or Chrome) binary to drive: $PUSHFABRIC_CHROMIUM,
// else the first of the usual names on PATH. The test skips without one,
// unless PUSHFABRIC_REQUIRE_CHROMIUM is set (CI, whose .ci/run installs
// Debian's chromium).
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("PUSHFABRIC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PUSHFABRIC_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no chromium on PATH, and PUSHFABRIC_REQUIRE_CHROMIUM is set (apt-get install chromium)")
	}
	t.Skip("no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium): the browser page is not exercised")
	return ""
}

// quickstartEdge is a node as make run starts it (tokens signed with a
// secret), pinging every second and closing a client not heard from for
// two, with the browser example served beside it as examples/browser/serve
// does. It returns the page's address and the NATS server.
func quickstartEdge(t *testing.T) (page string, s *server.Server) {
	s = natstest.Server(t)
	cfg := edgeConfig(t, s, "browser-node")
	cfg.Edge.PingInterval, cfg.Edge.IdleTimeout = time.Second, 2*time.Second
	n := startEdge(t, cfg)
	h, err := browser.Handler(n.ws())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, s
}

// feed answers as examples/rpc-service's feed: n pages, here at once.
func feed(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
	return func(yield func(backend.Reply, error) bool) {
		for i := 1; i <= 3; i++ {
			page := fmt.Sprintf("page %d of %s for %s", i, req.Payload, req.Session)
			if !yield(backend.Reply{Payload: []byte(page), ContentType: "text/plain"}, nil) {
				return
			}
		}
	}
}

// openPage starts a headless Chromium, exe, with a fresh profile and opens
// url in it; the browser is stopped at cleanup.
func openPage(t *testing.T, exe, url string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 500))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("chromium %s: open %s: %v", exe, url, err)
	}
	return ctx
}

// pageLog is the text the page has logged so far.
func pageLog(t *testing.T, ctx context.Context) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("log").textContent`))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return s
}

// waitLog waits until the page has logged want, failing at once if the
// page logged that its connection closed.
func waitLog(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		s := pageLog(t, ctx)
		switch {
		case strings.Contains(s, want):
			return
		case strings.Contains(s, "closed:") || time.Now().After(deadline):
			t.Fatalf("the page did not show %q; it shows:\n%s", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot keeps the page's picture, as a PNG, in $PUSHFABRIC_ARTIFACTS
// (.ci/run sets it) or else the test's artifact directory (kept under the
// output directory with go test -artifacts).
func screenshot(t *testing.T, ctx context.Context, name string) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("PUSHFABRIC_ARTIFACTS")
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// publish pushes payload to session over NATS and waits for its ack.
func publish(t *testing.T, s *server.Server, session, id, payload string) {
	t.Helper()
	if ack := request(t, natstest.Connect(t, s), pushMsg(session, "high", id, payload)); ack.Status != protocol.StatusEnqueued {
		t.Fatalf("push %s: ack %+v, want enqueued", id, ack)
	}
}

// The browser example, in real Chromium, loaded as the make run banner
// says (served beside the edge, a token in ?token=), holds its session and
// shows the no_handler error frame while no backend serves feed; reloaded
// with the quickstart's backend (examples/rpc-service's feed) running, it
// shows a push published over NATS and the streamed reply; it stays
// connected across three idle timeouts, still receiving pushes; and
// without a token it shows why the edge closed it, in the edge's words;
// from file:// it says how to open it instead.
func TestBrowserPage(t *testing.T) {
	exe := chromiumPath(t)
	page, s := quickstartEdge(t)
	url := page + "/?token=" + mint(t, "browser")
	ctx := openPage(t, exe, url)
	waitLog(t, ctx, "holding session browser on node browser-node")
	waitLog(t, ctx, "error no_handler (request r1): ")

	serve(t, natstest.Connect(t, s), "feed", feed)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ctx, "holding session browser on node browser-node")
	publish(t, s, "browser", "p1", "hello browser")
	waitLog(t, ctx, "push p1 (high): hello browser")
	waitLog(t, ctx, "feed: page 3 of 3 for browser")
	waitLog(t, ctx, "feed ended")
	screenshot(t, ctx, "browser-page.png")

	// Three idle timeouts with nothing but the edge's pings and the
	// browser's pongs on the connection.
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if s := pageLog(t, ctx); strings.Contains(s, "closed:") {
			t.Fatalf("the page's connection closed while idle:\n%s", s)
		}
	}
	publish(t, s, "browser", "p2", "still here")
	waitLog(t, ctx, "push p2 (high): still here")
	screenshot(t, ctx, "browser-page-idle.png")

	if err := chromedp.Do(ctx, chromedp.Navigate(page+"/")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ctx, "server is closing: auth: missing token")
	waitLog(t, ctx, "closed: 4001 auth")

	// Opened from file://, the page says how to get one that connects.
	file, err := filepath.Abs("../examples/browser/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file)); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ctx, "Run go run ./examples/browser/serve and open the URL the make run banner prints.")
}
