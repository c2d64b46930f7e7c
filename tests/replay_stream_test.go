package tests

import (
	"os/exec"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The shipped server-side replay stream, added with the stock nats CLI as
// docs/dead-letters.md says: it takes only the offline high and low dead
// letters and republishes them to their sessions, and never a letter for
// a control subject, a group, or another reason.
func TestReplayStreamTakesOnlyHighAndLow(t *testing.T) {
	natsBin := natstest.CLI(t)
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	c := dial(t, n.tcp(), "s1", client.Options{})
	storeForgedLetters(t, s, []forgedLetter{
		{"dlq.push.offline.s1.high", "rs-high", "push.s1.high", true},
		{"dlq.push.offline.s1.low", "rs-low", "push.s1.low", true},
		{"dlq.push.offline.s1.ctl", "rs-ctl", "push.s1.ctl", false},
		{"dlq.push.offline.group.g1.high", "rs-group", "push.group.g1.high", false},
		{"dlq.push.queue_full.s1.high", "rs-queue-full", "push.s1.high", false},
	})
	sp := spyOn(t, s)

	nats := func(args ...string) {
		t.Helper()
		cmd := exec.Command(natsBin, append([]string{"--server", s.ClientURL()}, args...)...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nats %v: %v\n%s", args, err, out)
		}
	}
	nats("stream", "add", "--config", "deployments/nats/push-replay-stream.json")
	got := map[string]bool{recv(t, c).ID: true, recv(t, c).ID: true}
	if !got["rs-high"] || !got["rs-low"] {
		t.Fatalf("s1 got %v from the replay stream; want rs-high and rs-low", got)
	}
	replay, err := natstest.JetStream(t, s).Stream(timeout(t), "PUSH_REPLAY")
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.StreamInfo
	waitFor(t, "the replay stream caught up with PUSH_DLQ", func() bool {
		info, err = replay.Info(timeout(t))
		if err != nil || len(info.Sources) == 0 {
			return false
		}
		for _, src := range info.Sources {
			if src.Lag != 0 || src.Active < 0 {
				return false
			}
		}
		return true
	})
	if info.State.Msgs != 2 {
		t.Errorf("the replay stream took %d dead letters; want 2", info.State.Msgs)
	}
	// The server republishes to its subscribers one by one: the client's
	// node may have had both before the spy has.
	waitFor(t, "the spy to see both replayed pushes", func() bool { return len(sp.Pushes()) >= 2 })
	checkReplayTraffic(t, sp, map[string]string{"rs-high": "push.s1.high", "rs-low": "push.s1.low"},
		"$JS.API.STREAM.CREATE.PUSH_REPLAY", "$JS.API.STREAM.INFO.PUSH_REPLAY", "$JSC.R.") // the stream and its sourcing
	nats("stream", "rm", "PUSH_REPLAY", "-f")
}
