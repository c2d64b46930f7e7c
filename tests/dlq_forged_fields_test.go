package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// pushctl dlq ls and show name a dead letter's reason, session and priority
// from its stream subject, not from headers whoever stored it may have
// forged, and its filters select by the same tokens.
func TestPushctlListsTheSubjectsReasonSessionPriority(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(timeout(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	natstest.StoreForged(timeout(t), t, js, natstest.ForgedLetter{Subject: "dlq.push.offline.carol.high", ID: "f1", PushSubject: "push.dave.low",
		Header: nats.Header{protocol.HeaderReason: {"closed"}, protocol.HeaderSession: {"dave"}, protocol.HeaderPriority: {"low"}}})
	pushctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary(t, "pushctl"), append([]string{"dlq", args[0], "--nats", s.ClientURL()}, args[1:]...)...).Output()
		if err != nil {
			t.Fatalf("pushctl dlq %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, args := range [][]string{{"ls"}, {"ls", "--session", "carol", "--reason", "offline", "--priority", "high"}} {
		if out := pushctl(args...); len(strings.Fields(out)) < 15 || strings.Join(strings.Fields(out)[10:13], " ") != "offline carol high" {
			t.Errorf("pushctl dlq %v:\n%s\nwant f1 listed as offline carol high", args, out)
		}
	}
	if out := pushctl("ls", "--session", "dave"); strings.Contains(out, "f1") {
		t.Errorf("pushctl dlq ls --session dave:\n%s\nwant nothing", out)
	}
	out := pushctl("show", "f1")
	if !strings.Contains(out, "reason offline, session carol, priority high") || !strings.Contains(out, "Push-Session: dave  (not what its subject says)") {
		t.Errorf("pushctl dlq show f1:\n%s\nwant offline carol high, and the forged Push-Session marked", out)
	}
}
