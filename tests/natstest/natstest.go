// Package natstest starts real nats-server instances in the test process:
// one JetStream server, or a cluster of them routed over loopback. Every
// server and connection is shut down when the test ends. It also holds what
// tests of NATS traffic share: forged dead letters stored straight into the
// stream, and a spy on every message a server carries. Only tests import
// it.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// readyTimeout bounds how long a server or cluster may take to come up.
const readyTimeout = 30 * time.Second

// Options are the options Server uses: JetStream on, a random loopback
// port, storage in a temporary folder.
func Options(t testing.TB, name string) *server.Options { return options(t, name) }

// StartWith starts a server with opts (for a restart on the same port and
// storage, say); it is shut down at cleanup.
func StartWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	return start(t, opts)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { return freePorts(t, 1)[0] }

func options(t testing.TB, name string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}
}

func start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server %s: %v", opts.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatalf("nats-server %s did not start", opts.ServerName)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Server starts one JetStream-enabled server on a random loopback port.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return start(t, options(t, "n1"))
}

// Cluster starts n JetStream-enabled servers named n1…nN, routed to each
// other on loopback, and waits until JetStream has a meta leader and every
// server sees the others.
func Cluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	return ClusterWith(t, n, nil)
}

// ClusterWith is Cluster with each server's options changed by mod (its
// clients' authentication, say) before it starts, and connect the options
// a client needs to connect to it.
func ClusterWith(t testing.TB, n int, mod func(*server.Options), connect ...nats.Option) []*server.Server {
	t.Helper()
	ports := freePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	servers := make([]*server.Server, n)
	for i := range n {
		o := options(t, fmt.Sprintf("n%d", i+1))
		o.Cluster = server.ClusterOpts{Name: "pushfabric-test", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		if mod != nil {
			mod(o)
		}
		servers[i] = start(t, o)
	}
	deadline := time.Now().Add(readyTimeout)
	for _, s := range servers {
		for s.NumRoutes() < n-1 || !jetStreamReady(s, connect...) {
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ready: %s has %d routes", s.Name(), s.NumRoutes())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return servers
}

// freePorts finds n free loopback ports (the cluster's route URLs must be
// known before its servers start).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		defer ln.Close()
	}
	return ports
}

// jetStreamReady asks the server for the account's JetStream info, which
// only succeeds once the cluster has a meta leader.
func jetStreamReady(s *server.Server, connect ...nats.Option) bool {
	nc, err := nats.Connect(s.ClientURL(), connect...)
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// Connect opens a client connection to s, closed at cleanup.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", s.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection to s.
func JetStream(t testing.TB, s *server.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// IgnoredGoroutines are the goroutines of nats-server that may outlive
// every server of a test process, for goleak.VerifyTestMain: its servers'
// background goroutines still winding down; the access-time ticker its
// stores share (server/ats), which a store stopped and another started at
// once can leave running (the ticker's stop signal is taken by the new
// one); and a file store's state-flushing loop, which a stream created
// while its server shuts down keeps (seen once in a full run of ./tests,
// after Shutdown and WaitForShutdown had returned).
func IgnoredGoroutines() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		AsyncPublisherRace(),
	}
}

// AsyncPublisherRace ignores the goroutine that nats.go's jetstream
// (v1.55.0) can leave behind when a publisher is cleaned up just after its
// first asynchronous publish, as a dead-letter writer stopped right after
// its first letter is. The first PublishMsgAsync starts
// resetPendingAcksOnReconnect, which takes the publisher's lock before it
// reads its status channel; when CleanupPublisher takes that lock first, it
// sets the channel to nil and the goroutine waits on nil for good. It is one
// goroutine for the life of the connection's process and holds nothing
// else; every other goroutine of a writer or producer left running is still
// found.
func AsyncPublisherRace() goleak.Option {
	return goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")
}

// CLI finds the stock nats CLI: $PUSHFABRIC_NATS_CLI, else bin/nats at the
// repository's root (the Makefile installs v0.5.0 there), else nats on the
// PATH. Without it the test fails when PUSHFABRIC_REQUIRE_NATS_CLI is set
// (make test sets it) and is skipped otherwise.
func CLI(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("PUSHFABRIC_NATS_CLI")}
	if root, err := repoRoot(); err == nil {
		candidates = append(candidates, filepath.Join(root, "bin", "nats"))
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if os.Getenv("PUSHFABRIC_REQUIRE_NATS_CLI") != "" {
		t.Fatal("the nats CLI is not installed (make test installs it into ./bin)")
	}
	t.Skip("the nats CLI is not installed; make test installs it")
	return ""
}

// repoRoot is the nearest folder above the working one with a go.mod
// naming the pushfabric module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/pushfabric/pushfabric\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the pushfabric module")
		}
		dir = parent
	}
}
