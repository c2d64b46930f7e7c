package tests

import (
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The dead-letter stream's limits come from the edge's flags; restarting
// with other values updates the stream in place.
func TestDeadLetterLimitsFromFlags(t *testing.T) {
	s := natstest.Server(t)
	for _, limits := range []struct {
		age      string
		maxAge   time.Duration
		perSubj  string
		wantPerS int64
	}{{"1h", time.Hour, "500", 500}, {"48h", 48 * time.Hour, "7", 7}} {
		p := startEdgeProcess(t, t.TempDir(), "--nats-url", s.ClientURL(), "--ws-listen", "", "--tcp-listen", "127.0.0.1:0",
			"--jwt-secret-file", writeSecret(t), "--dlq-max-age", limits.age, "--dlq-max-per-subject", limits.perSubj,
			"--dlq-max-bytes", "10485760")
		info, err := dlqStream(t, s).Info(timeout(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.MaxAge != limits.maxAge || info.Config.MaxMsgsPerSubject != limits.wantPerS || info.Config.MaxBytes != 10<<20 {
			t.Fatalf("stream limits %v / %d / %d; want %v / %d / %d", info.Config.MaxAge, info.Config.MaxMsgsPerSubject,
				info.Config.MaxBytes, limits.maxAge, limits.wantPerS, 10<<20)
		}
		if _, err := p.stop(t); err != nil {
			t.Fatal(err)
		}
	}
}
