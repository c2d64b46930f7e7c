package check

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
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

// The roles of deployments/nats agree: push.conf's users are the roles
// mkkeys.sh makes a seed for and keys.conf names, each known by its
// placeholder key UPLACEHOLDER_<ROLE>. Each user subscribes to its own
// inbox prefix, _INBOX_<role>.>, and to no other role's, and only the edge
// user publishes to inboxes (its answers), each an existing role's, but
// for a producer's marks to its own (_INBOX_<role>.*._mark: the producer
// client's Publish, signed).
func TestNATSRolesAgree(t *testing.T) {
	users := pushUsers(t)
	made := mkkeysRoles(t)
	named := keysConfRoles(t)
	if !slices.Equal(sortedKeys(users), made) || !slices.Equal(made, named) {
		t.Fatalf("roles: push.conf's users %v, mkkeys.sh's %v, keys.conf's %v; want the same", sortedKeys(users), made, named)
	}
	for role, perms := range users {
		if got := inboxes(perms, "subscribe"); !slices.Equal(got, []string{"_INBOX_" + role + ".>"}) {
			t.Errorf("%s subscribes to inboxes %v; want its own, _INBOX_%s.>, only", role, got, role)
		}
		for _, in := range inboxes(perms, "publish") {
			if in == "_INBOX_"+role+".*._mark" && (role == "producer" || role == "broadcast") {
				continue
			}
			other, _ := strings.CutSuffix(strings.TrimPrefix(in, "_INBOX_"), ".>")
			if _, ok := users[other]; role != "edge" || !ok || other == role {
				t.Errorf("%s publishes to inbox %s: only the edge may, on another existing role's inbox (its answers)", role, in)
			}
		}
	}
}

// pushUsers are push.conf's users by role, as nats-server parses it (the
// keys from keys.conf's placeholders).
func pushUsers(t *testing.T) map[string]map[string]any {
	t.Helper()
	cfg, err := conf.ParseFile(pushConf)
	if err != nil {
		t.Fatalf("push.conf: %v", err)
	}
	accounts, _ := cfg["accounts"].(map[string]any)
	account, _ := accounts["PUSH"].(map[string]any)
	users := map[string]map[string]any{}
	for _, u := range toAnys(account["users"]) {
		u, _ := u.(map[string]any)
		key, _ := u["nkey"].(string)
		role, ok := strings.CutPrefix(key, "UPLACEHOLDER_")
		if !ok {
			t.Fatalf("push.conf: a user with key %q, not keys.conf's placeholder UPLACEHOLDER_<ROLE>", key)
		}
		users[strings.ToLower(role)], _ = u["permissions"].(map[string]any)
	}
	return users
}

// mkkeysRoles are the roles mkkeys.sh makes a seed for, sorted.
func mkkeysRoles(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*for role in ([a-z ]+); do$`).FindSubmatch(mustRead(t, filepath.Join(root, "deployments/nats/mkkeys.sh")))
	if m == nil {
		t.Fatal("mkkeys.sh: no for role in …; do")
	}
	roles := strings.Fields(string(m[1]))
	slices.Sort(roles)
	return roles
}

// keysConfRoles are the roles keys.conf has a placeholder key for, each
// <ROLE>_NKEY: "UPLACEHOLDER_<ROLE>", sorted.
func keysConfRoles(t *testing.T) []string {
	t.Helper()
	var roles []string
	line := regexp.MustCompile(`(?m)^([A-Z]+)_NKEY: "UPLACEHOLDER_([A-Z]+)"$`)
	for _, m := range line.FindAllStringSubmatch(string(mustRead(t, filepath.Join(root, "deployments/nats/keys.conf"))), -1) {
		if m[1] != m[2] {
			t.Errorf("keys.conf: %s_NKEY has the placeholder of %s", m[1], m[2])
		}
		roles = append(roles, strings.ToLower(m[1]))
	}
	slices.Sort(roles)
	return roles
}

// inboxes are the _INBOX subjects a user's permissions allow in dir
// (publish or subscribe), sorted.
func inboxes(perms map[string]any, dir string) []string {
	p, _ := perms[dir].(map[string]any)
	var out []string
	for _, s := range toAnys(p["allow"]) {
		if s, _ := s.(string); strings.HasPrefix(s, "_INBOX") {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}
