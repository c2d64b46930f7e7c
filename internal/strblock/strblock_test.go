package strblock

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ids are unique, 22 characters of [0-9A-Za-z], across blocks and sources,
// and cost no allocation of their own.
func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 2 {
		ids, b := NewIDs(), Block{Size: 128 * IDLen}
		for range 3*128 + 7 {
			id := ids.Next(&b)
			if len(id) != IDLen || strings.Trim(id, idDigits) != "" || seen[id] {
				t.Fatalf("id %q: want 22 characters of [0-9A-Za-z], never repeated", id)
			}
			seen[id] = true
		}
	}
	// The sequence carries as a number in base 62 does.
	carry := NewIDs()
	copy(carry.seq[:], "00000zzzzz")
	var cb Block
	if a, b := carry.Next(&cb), carry.Next(&cb); a[12:] != "00000zzzzz" || b[12:] != "0000100000" || a[:12] != b[:12] {
		t.Errorf("ids %s then %s; want …00000zzzzz then …0000100000", a, b)
	}
	ids, b := NewIDs(), Block{Size: 128 * IDLen}
	if n := testing.AllocsPerRun(1000, func() { ids.Next(&b) }); n > 1.0/100 {
		t.Errorf("an id allocates %.3f times", n)
	}
}

// Strings made one after another keep their bytes while later ones are
// made, in the same block and in new ones; longer than Start said, or
// than a block, works too.
func TestBlockStringsNeverChange(t *testing.T) {
	var b Block
	type made struct{ got, want string }
	var all []made
	at := time.Date(2026, 12, 2, 3, 4, 5, 6, time.UTC)
	for i := range 2000 {
		var s string
		switch i % 4 {
		case 0:
			s = b.Start(8).Add("push.").Add("s").AddUint(uint64(i), 10).AddByte('.').Add("high").String()
		case 1:
			s = b.Start(40).AddTime(at.Add(time.Duration(i)), time.RFC3339Nano).String()
		case 2:
			s = b.Start(0).Add(strings.Repeat("x", i)).String() // past a block, too
		case 3:
			s = b.Start(5).String()
		}
		var want string
		switch i % 4 {
		case 0:
			want = "push.s" + strconv.Itoa(i) + ".high"
		case 1:
			want = at.Add(time.Duration(i)).Format(time.RFC3339Nano)
		case 2:
			want = strings.Repeat("x", i)
		}
		all = append(all, made{s, want})
	}
	for i, m := range all {
		if m.got != m.want {
			t.Fatalf("string %d is %q; want %q", i, m.got, m.want)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { _ = b.Start(40).Add("push.").AddUint(12345, 36).AddTime(at, time.RFC3339Nano).String() }); n > 0.05 {
		t.Errorf("a string allocates %.3f times", n)
	}
}
