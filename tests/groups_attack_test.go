package tests

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Membership requests a backend publishes one after another, without
// waiting for each answer, change the session's groups in the order they
// were published (NATS keeps one publisher's order): twenty joins and
// then a request asking for one more leave the session a member of all
// twenty-one, and the answer to the last says so.
func TestMembershipRequestsApplyInOrder(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	dialGroups(t, n.tcp(), "ann")
	waitFor(t, "ann connected", func() bool { return n.Dispatcher.Stats().Sessions == 1 })
	nc := natstest.Connect(t, s)
	for round := range 5 {
		var want []string
		for i := range 20 {
			g := fmt.Sprintf("r%dg%02d", round, i)
			want = append(want, g)
			m := &nats.Msg{Subject: protocol.MemberSubject(protocol.DefaultPrefix, "ann"),
				Header: nats.Header{protocol.HeaderJoin: []string{g}}}
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		last := fmt.Sprintf("r%dlast", round)
		r, _ := memberRequest(t, nc, "ann", last, "")
		want = append(want, last)
		slices.Sort(want)
		if r.Error != "" || strings.Join(r.Groups, ",") != strings.Join(want, ",") {
			t.Fatalf("round %d: the last request's answer %+v; want groups %v (every earlier join applied first)", round, r, want)
		}
		if r, _ = memberRequest(t, nc, "ann", "", strings.Join(want, ",")); r.Error != "" || len(r.Groups) != 0 {
			t.Fatalf("round %d: leave all: %+v; want no groups", round, r)
		}
	}
}
