package cluster

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
)

// The permission table of docs/deploying.md is the shipped config's: for
// each role, the same subjects allowed to publish, denied and allowed to
// subscribe.
func TestPermissionTableIsTheConfig(t *testing.T) {
	shipped := configRights(t)
	documented := tableRights(t)
	for _, role := range roles {
		for _, right := range []string{"publish", "deny publish", "subscribe"} {
			got, want := documented[role][right], shipped[role][right]
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: docs/deploying.md lists %q; push.conf has %q", role, right, got, want)
			}
		}
	}
	if len(shipped) != len(roles) || len(documented) != len(roles) {
		t.Errorf("roles: push.conf has %d, the table %d; want %d", len(shipped), len(documented), len(roles))
	}
}

// rights are subjects by role and right, each list sorted.
type rights map[string]map[string][]string

func (r rights) add(role, right string, subjects ...string) {
	if r[role] == nil {
		r[role] = map[string][]string{}
	}
	r[role][right] = append(r[role][right], subjects...)
	slices.Sort(r[role][right])
}

// configRights reads the users of n1.conf's account PUSH (push.conf, as
// nats-server parses it, includes and variables resolved), each known by
// its placeholder key in keys.conf (UPLACEHOLDER_<ROLE>).
func configRights(t *testing.T) rights {
	t.Helper()
	m, err := conf.ParseFile("../../deployments/nats/n1.conf")
	if err != nil {
		t.Fatal(err)
	}
	users := m["accounts"].(map[string]any)["PUSH"].(map[string]any)["users"].([]any)
	r := rights{}
	for _, u := range users {
		u := u.(map[string]any)
		role := strings.ToLower(strings.TrimPrefix(u["nkey"].(string), "UPLACEHOLDER_"))
		perms := u["permissions"].(map[string]any)
		for dir, right := range map[string]string{"publish": "publish", "subscribe": "subscribe"} {
			p, _ := perms[dir].(map[string]any)
			r.add(role, right, strs(t, p["allow"])...)
			if deny := strs(t, p["deny"]); len(deny) > 0 {
				r.add(role, "deny "+right, deny...)
			}
		}
	}
	return r
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, e.(string))
		}
		return s
	}
	t.Fatalf("%v (%T): not a subject or a list of them", v, v)
	return nil
}

var quoted = regexp.MustCompile("`([^`]+)`")

// tableRights reads the table under "## Permissions" in docs/deploying.md:
// | role | right | subjects | why |.
func tableRights(t *testing.T) rights {
	t.Helper()
	b, err := os.ReadFile("../../docs/deploying.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Permissions\n")
	if !ok {
		t.Fatal("docs/deploying.md has no Permissions section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	r := rights{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) != 4 || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| role ") {
			continue
		}
		role, right := strings.TrimPrefix(cells[0], "| "), cells[1]
		for _, m := range quoted.FindAllStringSubmatch(cells[2], -1) {
			r.add(role, right, m[1])
		}
	}
	if len(r) == 0 {
		t.Fatal("no permission table in docs/deploying.md")
	}
	return r
}
