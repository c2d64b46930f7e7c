package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// The tool's reply subjects take --nats-inbox-prefix, else the nats
// context's inbox_prefix, else _INBOX.
func TestInboxPrefixFromFlagOrContext(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	ctx := `{"url": "` + s.ClientURL() + `", "inbox_prefix": "_INBOX_ctx"}`
	if err := os.MkdirAll(filepath.Join(dir, "nats", "context"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats", "context", "ops.json"), []byte(ctx), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flags NATSFlags
		want  string
	}{
		{NATSFlags{URL: s.ClientURL()}, "_INBOX."},
		{NATSFlags{URL: s.ClientURL(), InboxPrefix: "_INBOX_operator"}, "_INBOX_operator."},
		{NATSFlags{Context: "ops"}, "_INBOX_ctx."},
		{NATSFlags{Context: "ops", InboxPrefix: "_INBOX_operator"}, "_INBOX_operator."},
	} {
		nc, err := c.flags.Connect("test", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := nc.NewInbox(); !strings.HasPrefix(got, c.want) {
			t.Errorf("%+v: inbox %s; want %s…", c.flags, got, c.want)
		}
		nc.Close()
	}
}
