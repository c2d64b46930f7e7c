package edge

import "sync"

// tracked is a set of the live things of one kind that their owner ends
// when it stops (listeners, sockets in their handshake, connections): add
// refuses once the set is closed, and close returns what it held then.
// The zero value is an empty, open set. Safe for concurrent use.
type tracked[T comparable] struct {
	mu     sync.Mutex
	live   map[T]struct{} // guarded by mu
	closed bool           // guarded by mu
}

// add adds x unless the set is closed, and reports whether it did. When
// it does and wg is not nil, it also adds one to wg under the set's lock,
// so that an owner that closes the set and then waits on wg waits for
// x's goroutine too.
func (s *tracked[T]) add(x T, wg *sync.WaitGroup) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.live == nil {
		s.live = make(map[T]struct{})
	}
	s.live[x] = struct{}{}
	if wg != nil {
		wg.Add(1)
	}
	return true
}

func (s *tracked[T]) remove(x T) {
	s.mu.Lock()
	delete(s.live, x)
	s.mu.Unlock()
}

// release removes x, which its goroutine keeps, and reports whether the
// set was still open: once closed, the owner has x (close returned it)
// and ends it.
func (s *tracked[T]) release(x T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, x)
	return !s.closed
}

// close refuses any more and returns what the set holds.
func (s *tracked[T]) close() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	held := make([]T, 0, len(s.live))
	for x := range s.live {
		held = append(held, x)
	}
	return held
}

func (s *tracked[T]) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *tracked[T]) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}
