package bus_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus"
)

// A node given an inbox prefix makes its own reply subjects there and its
// request replies under _PUSH_REQ: a user who may subscribe to nothing
// else has its JetStream calls answered and its forwarder subscribed,
// with no permission error.
func TestInboxPrefixIsWhereTheNodeSubscribes(t *testing.T) {
	s := startServer(t, &server.Options{JetStream: true, StoreDir: t.TempDir(), Users: []*server.User{{
		Username: "edge", Password: "pw",
		Permissions: &server.Permissions{Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_edge.>", "_PUSH_REQ.push.>"}}},
	}}})
	cfg := bus.DefaultConfig()
	cfg.URLs = []string{"nats://edge:pw@" + strings.TrimPrefix(s.ClientURL(), "nats://")}
	cfg.InboxPrefix = "_INBOX_edge"
	c, err := connect(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := bus.NewForwarder(c, bus.NewMetrics(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f.Start, f.Stop)
	js, err := jetstream.New(c.NC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("jetstream account info: %v", err)
	}
	if err := c.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().PermissionErrors; n != 0 {
		t.Fatalf("%d permission errors; want 0", n)
	}
}

func TestInboxPrefixIsChecked(t *testing.T) {
	for _, p := range []string{"_INBOX.", "_INBOX.>", "a..b", "a b", "*"} {
		cfg := bus.DefaultConfig()
		cfg.InboxPrefix = p
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "InboxPrefix") {
			t.Errorf("InboxPrefix %q: %v; want an InboxPrefix error", p, err)
		}
	}
	cfg := bus.DefaultConfig()
	cfg.InboxPrefix = "_INBOX_edge.n1"
	if err := cfg.Validate(); err != nil {
		t.Errorf("InboxPrefix %q: %v", cfg.InboxPrefix, err)
	}
}
