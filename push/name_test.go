package push_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/push"
)

// A reserved name is refused as a session's, with an error that wraps
// ErrInvalidName and says why; any other valid name passes.
func TestCheckSession(t *testing.T) {
	for _, name := range []string{"all", "group"} {
		err := push.CheckSession(name)
		if !errors.Is(err, push.ErrInvalidName) || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("push.CheckSession(%q) = %v; want a reserved name, wrapping ErrInvalidName", name, err)
		}
	}
	for name, ok := range map[string]bool{"alice": true, "groups": true, "all-1": true, "a.b": false, "": false} {
		if err := push.CheckSession(name); (err == nil) != ok {
			t.Errorf("push.CheckSession(%q) = %v", name, err)
		}
	}
}
