package edge

import (
	"slices"
	"sync"
	"testing"
)

// A tracked set takes what is added until it is closed, counting each on
// the WaitGroup it is given, and close returns what it still held.
func TestTrackedSet(t *testing.T) {
	var s tracked[int]
	var wg sync.WaitGroup
	for i := range 3 {
		if !s.add(i, &wg) {
			t.Fatalf("add %d to an open set refused", i)
		}
	}
	s.remove(1)
	wg.Done() // 1's goroutine ended
	if n := s.len(); n != 2 {
		t.Fatalf("len %d; want 2", n)
	}
	held := s.close()
	slices.Sort(held)
	if !slices.Equal(held, []int{0, 2}) || !s.isClosed() {
		t.Fatalf("close returned %v (closed: %v); want [0 2]", held, s.isClosed())
	}
	if s.add(3, &wg) {
		t.Fatal("a closed set took 3")
	}
	wg.Add(-2) // 0 and 2 were counted; 3 was not, or this would not reach zero
	wg.Wait()
}

// A broadcast wakes every goroutine waiting at the time, and only those.
func TestBroadcast(t *testing.T) {
	var mu sync.Mutex
	var b broadcast
	mu.Lock()
	first, second := b.waitLocked(), b.waitLocked()
	b.wakeLocked()
	later := b.waitLocked()
	b.wakeLocked() // wakes later, and nothing twice
	b.wakeLocked()
	mu.Unlock()
	for _, ch := range []<-chan struct{}{first, second, later} {
		<-ch
	}
	if first != second || first == later {
		t.Fatal("waiters at one time should share a channel, and a later one get a new one")
	}
}
