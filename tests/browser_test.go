package tests

import (
	"context"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/pushfabric/pushfabric/backend"
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

// exampleEdge is a node as make run starts it (tokens signed with a
// secret), pinging every second and closing a client not heard from for
// two, with the browser example served beside it by its command,
// examples/browser/serve, in a process of its own. It returns the page's
// address and the NATS server.
func exampleEdge(t *testing.T) (page string, s *server.Server) {
	s = natstest.Server(t)
	cfg := edgeConfig(t, s, "browser-node")
	cfg.Edge.PingInterval, cfg.Edge.IdleTimeout = time.Second, 2*time.Second
	n := startEdge(t, cfg)
	serve := start(t, t.TempDir(), os.Environ(), binary(t, "browser-serve"), "--listen", "127.0.0.1:0", "--edge", n.ws())
	at := regexp.MustCompile(`serving the page on (http://\S+)/ for`).FindStringSubmatch(serve.waitFor(t, "Ctrl-C to stop"))
	if at == nil {
		t.Fatalf("examples/browser/serve says %q", serve.output())
	}
	return at[1], s
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
	waitPageLog(t, ctx, want, "closed:")
}

// waitLogged waits until the page has logged want.
func waitLogged(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	waitPageLog(t, ctx, want, "")
}

// waitPageLog waits until the page has logged want, failing at once if
// the page logged fail ("": nothing fails).
func waitPageLog(t *testing.T, ctx context.Context, want, fail string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		s := pageLog(t, ctx)
		switch {
		case strings.Contains(s, want):
			return
		case fail != "" && strings.Contains(s, fail) || time.Now().After(deadline):
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

// The browser example (examples/browser: the smallest page on the
// JavaScript client, which it imports from clients/js/src as its server
// serves it), in real Chromium, served beside the edge with a token in
// ?token=, holds its session and shows the no_handler error while no
// backend serves feed; reloaded with examples/rpc-service's feed running,
// it shows a push published over NATS and the streamed reply; it stays
// connected across three idle timeouts, still receiving pushes; without a
// token it shows why the edge closed it, in the edge's words; from file://
// it says how to open it instead.
func TestBrowserPage(t *testing.T) {
	exe := chromiumPath(t)
	page, s := exampleEdge(t)
	url := page + "/?token=" + mint(t, "browser")
	ctx := openPage(t, exe, url)
	waitLog(t, ctx, "holding session browser on node browser-node")
	waitLog(t, ctx, "feed failed: no_handler: ")

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
	waitLogged(t, ctx, "closed: auth: missing token")

	// Opened from file://, the page says how to get one that connects.
	file, err := filepath.Abs("../examples/browser/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file)); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ctx, "Run go run ./examples/browser/serve and open the page it serves.")
}
