package dlq_test

import (
	"slices"
	"testing"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// A group's dead letters (dlq.<prefix>.<reason>.group.<group>.<priority>,
// a token longer than a session's) are read, counted and purged with the
// sessions' when no session is named, and alone when their group is.
func TestGroupLettersAreSeen(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	if _, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	natstest.StoreForged(ctx(t), t, js,
		natstest.ForgedLetter{Subject: "dlq.push.offline.alice.high", ID: "s1"},
		natstest.ForgedLetter{Subject: "dlq.push.offline.group.room-1.low", ID: "g1"},
		natstest.ForgedLetter{Subject: "dlq.push.invalid.group.all.high", ID: "g2"})
	store, err := dlq.Open(ctx(t), js, "push")
	if err != nil {
		t.Fatal(err)
	}
	ids := func(f dlq.Filter) []string {
		var out []string
		if err := store.Each(ctx(t), f, func(e dlq.Entry) error { out = append(out, e.ID()); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(dlq.Filter{}); !slices.Equal(got, []string{"g1", "g2", "s1"}) {
		t.Fatalf("every letter: %q; want g1 g2 s1", got)
	}
	if got := ids(dlq.Filter{Reason: "offline"}); !slices.Equal(got, []string{"g1", "s1"}) {
		t.Fatalf("offline letters: %q; want g1 s1", got)
	}
	if n, err := store.Purge(ctx(t), dlq.Filter{}); err != nil || n != 3 {
		t.Fatalf("purge: %d, %v; want 3", n, err)
	}
	if got := ids(dlq.Filter{}); len(got) != 0 {
		t.Fatalf("after the purge: %q", got)
	}
}
