package check

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
)

// pushConf is the accounts and permissions of deployments/nats, which
// compose mounts and the Helm values include.
var pushConf = filepath.Join(root, "deployments/nats/push.conf")

// edgeInboxPrefix is the inbox prefix push.conf lets the edge user
// subscribe to (its _INBOX_<role>.> right).
func edgeInboxPrefix(t *testing.T) string {
	t.Helper()
	cfg, err := conf.ParseFile(pushConf)
	if err != nil {
		t.Fatalf("push.conf: %v", err)
	}
	perms, _ := cfg["EDGE_PERMISSIONS"].(map[string]any)
	sub, _ := perms["subscribe"].(map[string]any)
	for _, s := range toAnys(sub["allow"]) {
		if p, ok := strings.CutSuffix(s.(string), ".>"); ok && strings.HasPrefix(p, "_INBOX") {
			return p
		}
	}
	t.Fatalf("push.conf: EDGE_PERMISSIONS lets the edge subscribe to no _INBOX prefix: %v", sub["allow"])
	return ""
}

// checkInboxPrefix: an edge config uses the inbox prefix the edge user
// may subscribe to, else every JetStream call it makes finds no reply.
func checkInboxPrefix(t *testing.T, path string, cfg map[string]any) {
	t.Helper()
	if want := edgeInboxPrefix(t); cfg["nats-inbox-prefix"] != want {
		t.Errorf("%s: nats-inbox-prefix %v; push.conf lets the edge user subscribe to %s.> only", path, cfg["nats-inbox-prefix"], want)
	}
}
