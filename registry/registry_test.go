package registry

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type conn struct{ name string }

func TestInsertReturnsPreviousHolder(t *testing.T) {
	r := New[conn]()
	a, b := &conn{"a"}, &conn{"b"}
	if prev := r.Insert("s1", a); prev != nil {
		t.Fatalf("first insert returned %v; want nil", prev)
	}
	if prev := r.Insert("s1", b); prev != a {
		t.Fatalf("takeover returned %v; want a", prev)
	}
	if got := r.Get("s1"); got != b {
		t.Fatalf("Get = %v; want b", got)
	}
	if r.Remove("s1", a) {
		t.Fatal("the replaced holder removed its successor")
	}
	if !r.Remove("s1", b) || r.Len() != 0 || r.Get("s1") != nil {
		t.Fatalf("after Remove: len %d, get %v; want empty", r.Len(), r.Get("s1"))
	}
	runtime.KeepAlive(a)
}

func TestRange(t *testing.T) {
	r := New[conn]()
	held := make([]*conn, 10)
	for i := range held {
		held[i] = &conn{fmt.Sprint(i)}
		r.Insert(held[i].name, held[i])
	}
	seen := map[string]bool{}
	r.Range(func(id string, c *conn) bool {
		if c.name != id {
			t.Errorf("entry %s holds %s", id, c.name)
		}
		seen[id] = true
		r.Get(id) // Range must not hold the lock while calling fn
		return true
	})
	if len(seen) != len(held) {
		t.Fatalf("Range visited %d; want %d", len(seen), len(held))
	}
	n := 0
	r.Range(func(string, *conn) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Range went on after false: %d calls", n)
	}
	runtime.KeepAlive(held)
}

// A handle nobody references any more disappears even without Remove.
func TestWeaklyHeld(t *testing.T) {
	r := New[conn]()
	func() { r.Insert("gone", &conn{"gone"}) }()
	deadline := time.Now().Add(10 * time.Second)
	for r.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("collected handle still registered: len %d", r.Len())
		}
		runtime.GC()
		runtime.Gosched()
	}
	if r.Get("gone") != nil {
		t.Fatal("Get returned a collected handle")
	}
}

func TestConcurrentUse(t *testing.T) {
	r := New[conn]()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				id := fmt.Sprint(i % 50)
				c := &conn{fmt.Sprint(w)}
				if prev := r.Insert(id, c); prev == c {
					t.Error("Insert returned the new handle")
				}
				r.Get(id)
				r.Remove(id, c)
			}
		})
	}
	wg.Wait()
	if r.Len() != 0 {
		t.Fatalf("len %d after every holder removed itself; want 0", r.Len())
	}
}

func BenchmarkGet(b *testing.B) {
	r := New[conn]()
	held := make([]*conn, 1000)
	for i := range held {
		held[i] = &conn{fmt.Sprint(i)}
		r.Insert(held[i].name, held[i])
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if r.Get(held[i%len(held)].name) == nil {
			b.Fatal("missing")
		}
	}
	runtime.KeepAlive(held)
}
