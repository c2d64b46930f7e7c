package producer

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A mark is the producer's only if it carries the producer's key: one
// forged by another client of the status inbox (a number alone, or the
// key of another producer) forgets nothing.
func TestForgedMarksForgetNothing(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	p, err := New(nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := p.tracked.add(1<<62, 10)
	s.keep(&nats.Msg{Subject: "push.s.high", Header: nats.Header{}}, 3, "id", "t")
	s.name, s.prio = "s", push.High
	for _, forged := range []string{"zzzzzz", other.markKey + "zzzzzz", p.markKey[:len(p.markKey)-1] + "zz", ""} {
		p.onStatus(&nats.Msg{Subject: p.markSubject, Data: []byte(forged)})
		if p.tracked.live != 1 {
			t.Fatalf("mark %q forgot a push", forged)
		}
	}
	p.onStatus(&nats.Msg{Subject: p.markSubject, Data: []byte(p.markKey + strconv.FormatUint(s.seq, 36))})
	if p.tracked.live != 0 {
		t.Fatal("the producer's own mark forgot nothing")
	}
}
