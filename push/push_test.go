package push_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/push"
)

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "Alice_1-2": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "a.b": false, "a b": false, "*": false, ">": false, "é": false,
	} {
		if got := push.ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v; want %v", s, got, want)
		}
		err := push.CheckName("session", s)
		if (err == nil) != want || err != nil && (!errors.Is(err, push.ErrInvalidName) || !strings.HasPrefix(err.Error(), "session ")) {
			t.Errorf("CheckName(%q) = %v", s, err)
		}
	}
}

func TestReasonsAndPriorities(t *testing.T) {
	for _, r := range push.Reasons {
		if !r.Known() {
			t.Errorf("%s is not known", r)
		}
	}
	if push.Reason("lost").Known() {
		t.Error(`"lost" is known`)
	}
	for _, p := range push.Priorities {
		if got, err := push.ParsePriority(p.String()); err != nil || got != p {
			t.Errorf("ParsePriority(%s) = %v, %v", p, got, err)
		}
	}
	if _, err := push.ParsePriority("HIGH"); err == nil {
		t.Error("HIGH parsed")
	}
}

func TestNoResponders(t *testing.T) {
	h := map[string][]string{"Status": {"503"}}
	if !push.NoResponders(h, nil) || push.NoResponders(h, []byte("x")) || push.NoResponders(nil, nil) {
		t.Error("NoResponders is wrong")
	}
}

func TestTimeRoundTrip(t *testing.T) {
	now := time.Now()
	got, err := push.ParseTime(push.FormatTime(now))
	if err != nil || !got.Equal(now) {
		t.Fatalf("got %v, %v; want %v", got, err, now)
	}
}
