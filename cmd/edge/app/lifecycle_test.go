package app_test

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A node that cannot start leaves nothing behind: whatever made it fail
// (a bad config of any component, or a NATS that is not there), app.Run
// returns the error with no goroutine left running and the embedded NATS
// server's port free again.
func TestRunLeavesNothingRunningWhenItFails(t *testing.T) {
	waits := map[string]time.Duration{"a nats that never answers": 300 * time.Millisecond} // less than nats.go's 2 s
	for _, c := range []struct {
		what string
		mod  func(t *testing.T, c *app.Config)
		want string // in the error
	}{
		{"edge config", func(_ *testing.T, c *app.Config) { c.Edge.QueueLen = -1 }, "Edge.QueueLen must be positive"},
		{"bus config", func(_ *testing.T, c *app.Config) { c.Bus.HandoverTimeout = 0 }, "Bus.HandoverTimeout must be positive"},
		{"dlq stream config", func(_ *testing.T, c *app.Config) { c.Stream.Replicas = -1 }, "Stream.Replicas must be 1 to 5, or 0"},
		{"dlq writer config", func(_ *testing.T, c *app.Config) { c.Writer.Buffer = 0 }, "Writer.Buffer must be positive"},
		{"identity", func(_ *testing.T, c *app.Config) { c.Identity.Prefix = "a.b" }, "prefix"},
		{"jwt secret file", func(t *testing.T, c *app.Config) { c.JWTSecretFile = filepath.Join(t.TempDir(), "missing") }, "JWTSecretFile is not usable"},
		{"listener address", func(_ *testing.T, c *app.Config) { c.TCPListen = "127.0.0.1" }, "TCPListen is not an address"},
		// What fails only as the node starts: each stops what started before it.
		{"embedded nats port taken", func(t *testing.T, c *app.Config) { c.Bus.Embedded.Listen = taken(t) }, "embedded nats"},
		{"admin listener taken", func(t *testing.T, c *app.Config) { c.AdminListen = taken(t) }, "admin listener"},
		{"dlq stream refused", func(_ *testing.T, c *app.Config) { c.Stream.Replicas = 3 }, "set --dlq-replicas"}, // one server
		{"listener taken", func(t *testing.T, c *app.Config) { c.TCPListen = taken(t) }, "tcp listener"},
		// With ConnectRetry off, the default: fail fast (see TestNodeStartsBeforeNATSWithConnectRetry).
		{"no nats where the url points", func(t *testing.T, c *app.Config) {
			c.Bus.URLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))}
		}, "connect to nats"},
		// Run's context bounds the wait for a server that says nothing.
		{"a nats that never answers", func(t *testing.T, c *app.Config) {
			c.Bus.URLs = []string{"nats://" + taken(t)}
		}, "connect to nats"},
	} {
		t.Run(c.what, func(t *testing.T) {
			cfg, port := embeddedConfig(t)
			c.mod(t, &cfg)
			before := goleak.IgnoreCurrent()
			ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(waits[c.what], testTimeout))
			defer cancel()
			node, stop, err := app.Run(ctx, cfg, zap.NewNop())
			if err == nil {
				_ = stop(context.Background())
				t.Fatalf("app.Run started a node (%v); want an error naming %q", node, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("app.Run: %v; want an error naming %q", err, c.want)
			}
			goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
			ln, err := net.Listen("tcp", port)
			if err != nil {
				t.Fatalf("the embedded NATS server's port is still taken: %v", err)
			}
			ln.Close()
		})
	}
}

// testTimeout bounds every wait; reaching it is a failure.
const testTimeout = 30 * time.Second

// embeddedConfig is a node with an embedded NATS server on a free port
// (returned) and every listener on a random loopback port.
func embeddedConfig(t *testing.T) (app.Config, string) {
	cfg := app.DefaultConfig()
	cfg.WSListen, cfg.TCPListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	port := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	cfg.Bus.Embedded.Listen, cfg.Bus.Embedded.DataDir = port, t.TempDir()
	return cfg, port
}

// taken is the address of a listener that accepts and says nothing,
// until the test ends.
func taken(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// Validate names every component's errors at once, each field by its
// path in app.Config.
func TestValidateJoinsEveryComponentsErrors(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.Identity.Node = ""
	cfg.Bus.DispatchLanes = 0
	cfg.Edge.QueueLen = -1
	cfg.Stream.MaxAge = 0
	cfg.Writer.InFlight = 0
	cfg.WSListen = "nowhere"
	cfg.JWTSecretFile, cfg.JWTPublicKeyFile = "a", "b"
	err := cfg.Validate()
	for _, want := range []string{`node ""`, "Bus.DispatchLanes must be positive", "Edge.QueueLen must be positive", "Stream.MaxAge must be positive",
		"Writer.InFlight must be positive", `WSListen is not an address: address nowhere`, "JWTSecretFile and JWTPublicKeyFile exclude each other"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to name %q", err, want)
		}
	}
	if err := app.DefaultConfig().Validate(); err != nil {
		t.Errorf("the default config: %v", err)
	}
}

// A listener address that is not one is reported as such, and only so:
// without a key, the loopback rule has nothing to say about it.
func TestValidateReportsABadListenerAddressOnly(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.WSListen = "nonsense"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Fatalf("Validate: %v; want the missing port named", err)
	}
	if strings.Contains(err.Error(), "loopback") {
		t.Errorf("Validate: %v; want only the missing port, not the loopback rule", err)
	}
}
