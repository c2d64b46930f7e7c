package edge

import "sync"

// scheduler gives a connection's write side an owner: one of a few shared
// flushers, or a goroutine of its own.
//
// Measured on 2 cores (BenchmarkFanOut; figures in BENCHMARKS.md): with
// 5,000 sessions pushed to as fast as possible, one shared flusher wrote a
// push every 0.83 µs and a goroutine per busy connection every 3.3 µs, the
// goroutines falling further behind as sessions grow; with 1,000 sessions
// the goroutines were about a third faster; paced at 50,000 pushes a second
// both cost the same CPU per push, and the goroutines allocate twice per
// push. One flusher is the default because it holds up as sessions grow and
// allocates nothing; Config.Flushers = 0 selects a goroutine per busy
// connection.
//
// Flushers never block on a socket: a write that would block passes the
// connection to a goroutine of its own (Conn.handoff). Connections without
// raw socket access (TLS, in-memory pipes) always get their own goroutine.
// A panic while writing for one connection (a hook, the dead-letter sink)
// closes that connection only; the flusher goes on (Conn.flushOnce).
type scheduler struct {
	srv *Server
	wg  sync.WaitGroup // the flushers

	mu   sync.Mutex
	cond sync.Cond
	// Guarded by mu. A ring of connections waiting for a flusher; each
	// appears at most once because only an idle write side is scheduled.
	ring    []*Conn
	head, n int
	stopped bool
}

func (s *scheduler) start(srv *Server, flushers int) {
	s.srv = srv
	s.cond.L = &s.mu
	for range flushers {
		s.wg.Go(s.flush)
	}
}

// schedule hands c's write side to an owner. Called with c.mu held.
func (s *scheduler) schedule(c *Conn) {
	if s.srv.cfg.Flushers == 0 || c.raw == nil {
		s.srv.wg.Go(func() {
			w := writers.Get().(*writer)
			c.runWriter(w)
			writers.Put(w)
		})
		return
	}
	s.mu.Lock()
	s.pushLocked(c)
	s.mu.Unlock()
	s.cond.Signal()
}

func (s *scheduler) pushLocked(c *Conn) {
	if s.n == len(s.ring) {
		grown := make([]*Conn, max(64, 2*len(s.ring)))
		for i := range s.n {
			grown[i] = s.ring[(s.head+i)%len(s.ring)]
		}
		s.ring, s.head = grown, 0
	}
	s.ring[(s.head+s.n)%len(s.ring)] = c
	s.n++
}

// next waits for a connection to write for; nil once stopped.
func (s *scheduler) next() *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.n == 0 && !s.stopped {
		s.cond.Wait()
	}
	if s.n == 0 {
		return nil
	}
	c := s.ring[s.head]
	s.ring[s.head] = nil
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	return c
}

// flush is a shared flusher: it writes one batch for each connection in
// turn, putting a connection with more to write at the back of the line so
// a busy session cannot starve the others.
func (s *scheduler) flush() {
	w := newWriter(true)
	for c := s.next(); c != nil; c = s.next() {
		if c.flushOnce(w) {
			s.mu.Lock()
			s.pushLocked(c)
			s.mu.Unlock()
		}
	}
}

// stop ends the flushers once no connection is left to write for.
func (s *scheduler) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cond.Broadcast()
	s.wg.Wait()
}
