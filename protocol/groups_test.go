package protocol

import (
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/internal/strblock"
)

// FuzzParseGroupSubject: any subject either names a group (or all) and a
// single token that rebuild it, and is then never a session's subject, or
// is refused.
func FuzzParseGroupSubject(f *testing.F) {
	for _, s := range []string{"push.group.g.high", "push.all.low", "push.group..high", "push.group.g", "push.all.",
		"push.group.g.a.b", "push.alice.high", "push.group.all.high", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		group, token, ok := ParseGroupSubject("push", subject)
		if !ok {
			return
		}
		if group == "" || token == "" || strings.Contains(token, ".") || strings.Contains(group, ".") {
			t.Fatalf("split %q into group %q and token %q", subject, group, token)
		}
		if GroupSubject("push", group, token) != subject {
			t.Fatalf("%q does not rebuild from %q, %q", subject, group, token)
		}
		if session, _, isSession := ParseSubject("push", subject); isSession && session != "all" {
			t.Fatalf("%q is both group %q's and session %q's", subject, group, session)
		}
	})
}

// FuzzSplitGroups: a Push-Join or Push-Leave value splits into names that
// are neither empty nor padded, and hold no comma.
func FuzzSplitGroups(f *testing.F) {
	for _, s := range []string{"a,b", " a , ,b,", ",,,", "", "a\tb", strings.Repeat("g,", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, n := range SplitGroups(v) {
			if n == "" || n != strings.TrimSpace(n) || strings.Contains(n, ",") {
				t.Fatalf("SplitGroups(%q) gave %q", v, n)
			}
		}
	})
}

// The subjects made in a block are the subjects.
func TestSubjectsInABlock(t *testing.T) {
	var b strblock.Block
	for _, c := range []struct{ prefix, name, prio string }{{"push", "alice", "high"}, {"p", "all", "low"}, {"push", "room-1", "low"}} {
		if got, want := PushSubjectIn(&b, c.prefix, c.name, c.prio), PushSubject(c.prefix, c.name, c.prio); got != want {
			t.Errorf("PushSubjectIn: %q; want %q", got, want)
		}
		if got, want := GroupSubjectIn(&b, c.prefix, c.name, c.prio), GroupSubject(c.prefix, c.name, c.prio); got != want {
			t.Errorf("GroupSubjectIn: %q; want %q", got, want)
		}
	}
}
