package dlq_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
)

// A letter whose Push-Replay-Count is not a non-negative integer that can
// be counted one higher is refused by replay with a clear error, never
// replayed with a wrapped-around or reset count; a letter without one is
// replayed as count 1.
func TestReplayRefusesABadReplayCount(t *testing.T) {
	entry := func(count string) dlq.Entry {
		h := nats.Header{protocol.HeaderID: {"p1"}}
		if count != "" {
			h.Set(protocol.HeaderReplayCount, count)
		}
		return dlq.Entry{Seq: 7, Subject: "dlq.push.offline.s1.high", Header: h}
	}
	for _, count := range []string{"99999999999999999999999", "9223372036854775807", "-1", "abc", "1.5", " 3", "+3"} {
		m, err := dlq.ReplayMsg("push", entry(count))
		var re *dlq.RefusedError
		if !errors.As(err, &re) || !errors.Is(err, dlq.ErrRefused) || !strings.Contains(err.Error(), "Push-Replay-Count") {
			var got string
			if m != nil {
				got = m.Header.Get(protocol.HeaderReplayCount)
			}
			t.Errorf("Push-Replay-Count %q: replayed with %q, error %v; want a *RefusedError naming Push-Replay-Count", count, got, err)
		}
	}
	for count, want := range map[string]string{"": "1", "0": "1", "41": "42", "9223372036854775806": "9223372036854775807"} {
		m, err := dlq.ReplayMsg("push", entry(count))
		if err != nil || m.Header.Get(protocol.HeaderReplayCount) != want {
			t.Errorf("Push-Replay-Count %q: %v, %v; want replayed with %s", count, m, err, want)
		}
	}
}
