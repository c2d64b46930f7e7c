package dlq_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/push"
)

// A filter on a reason no dead letter can have is refused, naming the
// reasons there are, instead of matching nothing; every known one passes.
func TestFilterRefusesAnUnknownReason(t *testing.T) {
	err := dlq.Filter{Reason: "bogus"}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"bogus"`) || !strings.Contains(err.Error(), "queue_full") {
		t.Errorf("Validate of reason bogus: %v; want it refused, naming the known reasons", err)
	}
	for _, r := range push.Reasons {
		if err := (dlq.Filter{Reason: string(r)}).Validate(); err != nil {
			t.Errorf("Validate of reason %s: %v", r, err)
		}
	}
}

// A letter says what was invalid only when the edge says so: a push's own
// Push-Invalid is not stored.
func TestLetterInvalidHeader(t *testing.T) {
	l := letter("p1", "")
	l.Header.Set("Push-Invalid", "forged")
	m, err := l.Msg("push", time.Now(), 1<<20)
	if err != nil || m.Header.Get("Push-Invalid") != "" {
		t.Fatalf("Push-Invalid %q (%v); want none", m.Header.Get("Push-Invalid"), err)
	}
	l.Invalid = "Push-Expires: bad"
	if m, err = l.Msg("push", time.Now(), 1<<20); err != nil || m.Header.Get("Push-Invalid") != "Push-Expires: bad" {
		t.Fatalf("Push-Invalid %q (%v); want the letter's", m.Header.Get("Push-Invalid"), err)
	}
}
