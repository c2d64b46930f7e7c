package producer

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A mark is the producer's only if it carries the MAC of the producer's
// key for its number: one forged by another client of the status inbox (a
// number alone, another producer's mark, a real mark with its number
// changed) forgets nothing, and is counted.
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
	real := p.markKey.mark(s.seq)
	changed := append([]byte("zz"), real[1:]...)
	forgeries := [][]byte{[]byte("zzzzzz"), other.markKey.mark(1 << 40), changed, real[:len(real)-1], nil}
	for _, forged := range forgeries {
		p.onStatus(&nats.Msg{Subject: p.markSubject, Data: forged})
		if p.tracked.live != 1 {
			t.Fatalf("mark %q forgot a push", forged)
		}
	}
	if got := p.Stats().Forged; got != uint64(len(forgeries)) {
		t.Errorf("%d forged counted; want %d", got, len(forgeries))
	}
	p.onStatus(&nats.Msg{Subject: p.markSubject, Data: real})
	if p.tracked.live != 0 {
		t.Fatal("the producer's own mark forgot nothing")
	}
}

// NATS's "no responders" names the subject published to since
// nats-server 2.12: an answer naming another, or none, is not NATS's for
// the push; from an older server, which names none, any is taken.
func TestAnswersPush(t *testing.T) {
	named := nats.Header{"Status": {"503"}, natsSubjectHeader: {"push.a.high"}}
	bare := nats.Header{"Status": {"503"}}
	for _, c := range []struct {
		h       nats.Header
		subject string
		version string
		want    bool
	}{
		{named, "push.a.high", "2.12.0", true},
		{named, "push.b.high", "2.15.3", false},
		{bare, "push.a.high", "2.15.3", false},
		{bare, "push.a.high", "3.0.0", false},
		{bare, "push.a.high", "2.11.9", true},
		{bare, "push.a.high", "", true},
		{named, "push.a.high", "2.10.0", true}, // a server that names it is believed whatever it says it is
		{nats.Header{"Status": {"503"}, natsSubjectHeader: {"push.a.high", "push.b.high"}}, "push.a.high", "2.12.0", false},
	} {
		if got := answersPush(c.h, c.subject, c.version); got != c.want {
			t.Errorf("answersPush(%v, %s, %q) = %v; want %v", c.h, c.subject, c.version, got, c.want)
		}
	}
}
