package backend

import (
	"cmp"
	"encoding/json"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
)

// FuzzGroupMembers: whatever two nodes answer to a group's presence
// request, each answer is counted, kept as its members or as an invalid
// answer, never lost; the members come out sorted by session, then node,
// and the nodes sorted, once each, every member's among them.
func FuzzGroupMembers(f *testing.F) {
	f.Add([]byte(`[{"session":"s1","node":"n1","since":"2026-12-01T18:00:00Z","groups":["g1"]}]`), []byte(`[]`))
	f.Add([]byte(`[{"session":"b","node":"n2"},{"session":"a","node":"n2"}]`), []byte(`[{"session":"a","node":"n1"}]`))
	f.Add([]byte(`{"session":"s1"}`), []byte(`null`))
	f.Add([]byte(`[{"since":"yesterday"}]`), []byte(nil))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var g GroupMembers
		g.take(&nats.Msg{Data: a})
		g.take(&nats.Msg{Data: b})
		g.sort()
		members, invalid := 0, 0
		for _, data := range [][]byte{a, b} {
			var list []protocol.SessionInfo
			if json.Unmarshal(data, &list) != nil {
				invalid++ // nothing of it kept, though a part decoded
				continue
			}
			members += len(list)
		}
		if g.Answers != 2 || len(g.Invalid) != invalid || len(g.Members) != members {
			t.Fatalf("%d answers, %d invalid, %d members; want 2, %d, %d", g.Answers, len(g.Invalid), len(g.Members), invalid, members)
		}
		if !slices.IsSortedFunc(g.Members, func(x, y protocol.SessionInfo) int {
			return cmp.Or(cmp.Compare(x.Session, y.Session), cmp.Compare(x.Node, y.Node))
		}) {
			t.Fatalf("members not sorted: %+v", g.Members)
		}
		if !slices.IsSorted(g.Nodes) || len(slices.Compact(slices.Clone(g.Nodes))) != len(g.Nodes) {
			t.Fatalf("nodes %q: want sorted, each once", g.Nodes)
		}
		for _, m := range g.Members {
			if _, found := slices.BinarySearch(g.Nodes, m.Node); !found {
				t.Fatalf("member %+v of a node not listed in %q", m, g.Nodes)
			}
		}
	})
}
