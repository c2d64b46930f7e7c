package protocol

import (
	"strings"
	"testing"
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
