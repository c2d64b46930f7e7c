package registry

import (
	"runtime"
	"sync"
	"weak"
)

// Registry maps session ids to live handles of type *T. It is safe for
// concurrent use. The zero value is not usable; call [New].
type Registry[T any] struct {
	mu sync.RWMutex
	m  map[string]weak.Pointer[T] // guarded by mu
}

// New returns an empty registry. It starts nothing: a registry has no
// goroutines, so it has no Start or Stop. The edge server and the
// packages that find sessions on this node (dispatch from NATS) share one.
func New[T any]() *Registry[T] {
	return &Registry[T]{m: make(map[string]weak.Pointer[T])}
}

// Insert makes h the holder of session id and returns the previous live
// holder, or nil. The caller closes the previous holder: newest wins. h must
// not be nil.
func (r *Registry[T]) Insert(id string, h *T) (prev *T) {
	wp := weak.Make(h)
	r.mu.Lock()
	if old, ok := r.m[id]; ok {
		prev = old.Value()
	}
	r.m[id] = wp
	r.mu.Unlock()
	runtime.AddCleanup(h, r.collect, entry[T]{id: id, wp: wp})
	return prev
}

// Get returns the live holder of session id, or nil.
func (r *Registry[T]) Get(id string) *T {
	r.mu.RLock()
	wp, ok := r.m[id]
	r.mu.RUnlock()
	if !ok {
		return nil
	}
	return wp.Value()
}

// Remove deletes session id if h still holds it, and reports whether it did.
// A connection that was replaced therefore cannot remove its successor.
func (r *Registry[T]) Remove(id string, h *T) bool {
	wp := weak.Make(h)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.m[id]; ok && cur == wp {
		delete(r.m, id)
		return true
	}
	return false
}

// Len is the number of sessions held.
func (r *Registry[T]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// Range calls fn for each live session until fn returns false. It works on
// a snapshot taken first, so fn may call other methods of r.
func (r *Registry[T]) Range(fn func(id string, h *T) bool) {
	r.mu.RLock()
	snap := make([]entry[T], 0, len(r.m))
	for id, wp := range r.m {
		snap = append(snap, entry[T]{id: id, wp: wp})
	}
	r.mu.RUnlock()
	for _, e := range snap {
		if h := e.wp.Value(); h != nil && !fn(e.id, h) {
			return
		}
	}
}

type entry[T any] struct {
	id string
	wp weak.Pointer[T]
}

// collect runs after a handle was garbage collected without being removed.
func (r *Registry[T]) collect(e entry[T]) {
	r.mu.Lock()
	if cur, ok := r.m[e.id]; ok && cur == e.wp {
		delete(r.m, e.id)
	}
	r.mu.Unlock()
}
