package strblock

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/pushfabric/pushfabric/push"
)

// A Stamper writes what push.FormatTime does, for times one after another in
// any order (within a second and across seconds, a whole second, a
// fraction with trailing zeros), in any zone; what it wrote stays.
func TestStamperWritesWhatFormatTimeDoes(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var s Stamper
		var b Block
		zone := time.FixedZone("z", rapid.IntRange(-12, 14).Draw(rt, "zone")*3600)
		base := time.Unix(rapid.Int64Range(0, 7_000_000_000).Draw(rt, "sec"), 0).In(zone)
		type made struct{ got, want string }
		var all []made
		for range rapid.IntRange(1, 50).Draw(rt, "n") {
			ns := rapid.OneOf(rapid.Just(int64(0)), rapid.Int64Range(0, 3e9), rapid.Map(rapid.Int64Range(0, 3e3), func(v int64) int64 { return v * 1e6 })).Draw(rt, "at")
			at := base.Add(time.Duration(ns))
			all = append(all, made{s.Stamp(&b, at), push.FormatTime(at)})
		}
		for i, m := range all {
			if m.got != m.want {
				rt.Fatalf("stamp %d: %q; want %q", i, m.got, m.want)
			}
		}
	})
	var s Stamper
	var b Block
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { _ = s.Stamp(&b, now) }); n > 0.05 {
		t.Errorf("a stamp allocates %.3f times", n)
	}
}
