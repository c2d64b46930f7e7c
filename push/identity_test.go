package push_test

import (
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/push"
)

func TestIdentity(t *testing.T) {
	if err := push.DefaultIdentity().Validate(); err != nil {
		t.Fatalf("the default identity: %v", err)
	}
	err := push.Identity{Prefix: "a.b", Node: "n 1"}.Validate()
	if err == nil || !strings.Contains(err.Error(), `prefix "a.b"`) || !strings.Contains(err.Error(), `node "n 1"`) {
		t.Fatalf("got %v; want both the prefix and the node refused", err)
	}
	for s, want := range map[string]bool{"push": true, "my:push": true, "": false, "a.b": false, "a*": false, ">": false, "a\tb": false} {
		if got := push.ValidToken(s); got != want {
			t.Errorf("ValidToken(%q) = %v; want %v", s, got, want)
		}
	}
}
