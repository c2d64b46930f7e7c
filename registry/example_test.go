package registry_test

import (
	"fmt"

	"github.com/pushfabric/pushfabric/registry"
)

type conn struct{ id int }

// Insert returns the connection it replaced, for the caller to close;
// Remove only removes the connection it is given, so a replaced one cannot
// remove its successor.
func Example() {
	r := registry.New[conn]()
	first, second := &conn{1}, &conn{2}
	r.Insert("alice", first)
	prev := r.Insert("alice", second) // newest wins
	fmt.Println("replaced:", prev.id)
	fmt.Println("removed by the old one:", r.Remove("alice", first))
	fmt.Println("holder:", r.Get("alice").id, "sessions:", r.Len())
	// Output:
	// replaced: 1
	// removed by the old one: false
	// holder: 2 sessions: 1
}
