package dlq_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// NewWriter checks its config and starts nothing; a writer stopped without
// having started counts what it was given as lost, and says so.
func TestWriterStartsOnlyWhenStarted(t *testing.T) {
	bad := dlq.DefaultWriterConfig()
	bad.Buffer, bad.AckTimeout = 0, -1
	if _, err := dlq.NewWriter(push.Identity{Prefix: "push"}, bad, nil); err == nil ||
		!strings.Contains(err.Error(), "dlq.WriterConfig.Buffer must be positive") || !strings.Contains(err.Error(), "dlq.WriterConfig.AckTimeout must be positive") {
		t.Fatalf("NewWriter: %v; want the buffer and the ack timeout refused", err)
	}
	if _, err := dlq.NewWriter(push.Identity{Prefix: "a.b"}, dlq.DefaultWriterConfig(), nil); err == nil {
		t.Fatal("NewWriter took the prefix a.b")
	}
	before := goleak.IgnoreCurrent()
	w, err := dlq.NewWriter(push.Identity{Prefix: "push", Node: "n1"}, dlq.DefaultWriterConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
	w.Write(letter("early", ""))
	if err := w.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "never started") {
		t.Fatalf("Stop: %v; want the letter it held said lost", err)
	}
	if st := w.Stats(); st.Lost != 1 || st.LostBy[dlq.LostShutdown] != 1 {
		t.Fatalf("stats %+v; want one lost at shutdown", st)
	}
}
