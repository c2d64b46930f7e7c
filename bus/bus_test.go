package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/registry"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoredGoroutines()...) }

// startServer runs a nats-server that requires authentication.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t testing.TB, cfg bus.Config) (*bus.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, push.DefaultIdentity(), cfg, zap.NewNop())
	if err == nil {
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	return c, err
}

// start starts a component, to be stopped when the test ends (cleanups
// run last first: the reverse of the order things started).
func start(t testing.TB, start, stop func(context.Context) error) {
	t.Helper()
	if err := start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func TestConnectWithToken(t *testing.T) {
	s := startServer(t, &server.Options{Authorization: "s3cret"})
	cfg := bus.DefaultConfig()
	cfg.URLs = []string{s.ClientURL()}
	if _, err := connect(t, cfg); err == nil || !strings.Contains(err.Error(), "connect to nats") {
		t.Fatalf("no token: %v; want a connect error", err)
	}
	cfg.Token = "s3cret"
	if _, err := connect(t, cfg); err != nil {
		t.Fatal(err)
	}
}

// A node whose NATS user may not announce takeovers counts the permission
// error; its session still works, and its subscription goes when the
// session leaves.
func TestPermissionErrorsAreCountedAndSubscriptionsRemoved(t *testing.T) {
	s := startServer(t, &server.Options{Users: []*server.User{{
		Username: "edge", Password: "pw",
		Permissions: &server.Permissions{Publish: &server.SubjectPermission{Deny: []string{"push.*.ctl"}}},
	}}})
	cfg := bus.DefaultConfig()
	cfg.URLs = []string{"nats://edge:pw@" + strings.TrimPrefix(s.ClientURL(), "nats://")}
	c, err := connect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New[edge.Conn]()
	w, err := dlq.NewWriter(c.Identity(), dlq.DefaultWriterConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, func(ctx context.Context) error { return w.Start(ctx, c.NC) }, w.Stop)
	d, err := bus.NewDispatcher(c, reg, bus.NewSink(w, c, nil, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, d.Start, d.Stop)
	hooks := d.Hooks()
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}, Registry: reg, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	start(t, srv.Start, srv.Shutdown)
	// Attach a session as the edge does on connect.
	conn := connectSession(t, srv, "alice")
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().PermissionErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refused takeover announcement was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := d.Stats(); st.Sessions != 1 {
		t.Fatalf("%d sessions subscribed; want 1", st.Sessions)
	}
	conn.close()
	for d.Stats().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived its session")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
