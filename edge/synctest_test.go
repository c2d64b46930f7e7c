package edge

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// These tests run in a synctest bubble, where time is virtual. Real
// sockets block outside the bubble's knowledge, so the client end here is
// an in-memory pipe; everything else is the real server.

// pipeClient is the client end of a connection attached over net.Pipe. A
// goroutine reads every frame and records it with its virtual arrival time.
type pipeClient struct {
	nc     net.Conn
	mu     sync.Mutex
	frames []timedFrame
	done   chan struct{}
	answer bool // answer pings
}

type timedFrame struct {
	wire.Frame
	at time.Time
}

type sinkFunc func(DeadLetter)

func (f sinkFunc) DeadLetter(dl DeadLetter) { f(dl) }

// newTestServer starts a server inside the bubble; it is shut down at
// cleanup.
func newTestServer(t *testing.T, cfg Config, o Options) *Server {
	t.Helper()
	o.Config, o.Auth = cfg, DevAuth{}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// attachPipe admits a connection for session over an in-memory pipe.
func attachPipe(t *testing.T, srv *Server, session string, answerPings bool) (*Conn, *pipeClient) {
	t.Helper()
	server, pc := newPipe(t, answerPings)
	return admitPipe(t, srv, server, session), pc
}

// newPipe makes an in-memory connection whose client end reads from now on.
func newPipe(t *testing.T, answerPings bool) (net.Conn, *pipeClient) {
	t.Helper()
	server, clientEnd := net.Pipe()
	pc := &pipeClient{nc: clientEnd, done: make(chan struct{}), answer: answerPings}
	go pc.read()
	t.Cleanup(func() { _ = clientEnd.Close(); <-pc.done })
	return server, pc
}

// admitPipe admits a connection for session on the server end of a pipe.
func admitPipe(t *testing.T, srv *Server, server net.Conn, session string) *Conn {
	t.Helper()
	c := srv.newConn(server, server.RemoteAddr(), tcpFraming{}, session)
	if !srv.admit(c) {
		t.Fatal("server refused the connection")
	}
	return c
}

func (pc *pipeClient) read() {
	defer close(pc.done)
	br := bufio.NewReader(pc.nc)
	for {
		body, err := wire.ReadTCP(br, nil, wire.DefaultMaxFrameSize)
		if err != nil {
			return
		}
		f, _ := wire.Decode(body)
		pc.mu.Lock()
		pc.frames = append(pc.frames, timedFrame{f, time.Now()})
		pc.mu.Unlock()
		if f.Type == wire.TypePing && pc.answer {
			b, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypePong})
			if _, err := pc.nc.Write(b); err != nil {
				return
			}
		}
	}
}

// pushes returns the push frames received so far.
func (pc *pipeClient) pushes() []timedFrame {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	var out []timedFrame
	for _, f := range pc.frames {
		if f.Type == wire.TypePush {
			out = append(out, f)
		}
	}
	return out
}

func (pc *pipeClient) count(typ wire.Type) int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	n := 0
	for _, f := range pc.frames {
		if f.Type == typ {
			n++
		}
	}
	return n
}

func ids(fs []timedFrame) string {
	var b []byte
	for i, f := range fs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f.ID...)
	}
	return string(b)
}

func tryPushAll(t *testing.T, c *Conn, p push.Priority, idList ...string) {
	t.Helper()
	for _, id := range idList {
		if err := c.TryPush(p, Envelope{Frame: Frame{ID: id}}); err != nil {
			t.Fatalf("TryPush %s: %v", id, err)
		}
	}
}

// A run of high frames that lasts FairnessSlice lets one low frame through.
func TestFairnessTimeSlice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxHighBeforeLow, cfg.FairnessSlice = 0, 250*time.Millisecond
		cfg.Rate, cfg.Burst = 10, 1 // one push every 100 ms
		srv := newTestServer(t, cfg, Options{})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait() // welcome written
		start := time.Now()
		tryPushAll(t, c, push.High, "H1", "H2", "H3", "H4", "H5", "H6")
		tryPushAll(t, c, push.Low, "L1")
		time.Sleep(time.Second)
		synctest.Wait()
		got := pc.pushes()
		if s, want := ids(got), "H1 H2 H3 L1 H4 H5 H6"; s != want {
			t.Fatalf("order %q; want %q", s, want)
		}
		if at := got[3].at.Sub(start); at != 300*time.Millisecond {
			t.Fatalf("L1 written at %v; want 300ms (after a 250ms run of highs)", at)
		}
	})
}

// N pushes at r per second, both priorities drawing on one bucket, take
// (N-1)/r seconds after the first with a burst of 1.
func TestRateLimitSharedByPriorities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, r = 20, rate.Limit(50)
		cfg := DefaultConfig()
		cfg.Rate, cfg.Burst = r, 1
		srv := newTestServer(t, cfg, Options{})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		start := time.Now()
		for i := range n {
			p := push.High
			if i%2 == 1 {
				p = push.Low
			}
			if err := c.TryPush(p, Envelope{Frame: Frame{ID: string(rune('a' + i))}}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		got := pc.pushes()
		if len(got) != n {
			t.Fatalf("got %d pushes; want %d", len(got), n)
		}
		for i, f := range got {
			want := time.Duration(i) * time.Second / time.Duration(r)
			if at := f.at.Sub(start); at < want || at > want+time.Millisecond {
				t.Fatalf("push %d written at %v; want %v", i, at, want)
			}
		}
	})
}

// Push waits while the queue is full and goes on when the writer drains
// it; ctx ends the wait; TryPush never waits.
func TestBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.QueueLen = 2
		cfg.Rate, cfg.Burst = 1, 1 // the writer drains one push a second
		srv := newTestServer(t, cfg, Options{})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		tryPushAll(t, c, push.High, "1") // written at once, taking the only token
		synctest.Wait()
		tryPushAll(t, c, push.High, "2", "3") // these wait for tokens
		if err := c.TryPush(push.High, Envelope{Frame: Frame{ID: "x"}}); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("TryPush on a full queue: %v; want ErrQueueFull", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		canceled := make(chan error)
		go func() { canceled <- c.Push(ctx, push.High, Envelope{Frame: Frame{ID: "never"}}) }()
		returned := make(chan error)
		go func() { returned <- c.Push(context.Background(), push.High, Envelope{Frame: Frame{ID: "4"}}) }()
		synctest.Wait()
		select {
		case err := <-returned:
			t.Fatalf("Push returned %v while the queue was full", err)
		default:
		}
		cancel()
		if err := <-canceled; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled Push: %v; want context.Canceled", err)
		}
		if err := <-returned; err != nil { // after one second, 2 went out
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s := ids(pc.pushes()); s != "1 2 3 4" {
			t.Fatalf("delivered %q; want \"1 2 3 4\"", s)
		}
	})
}

// A closed connection refuses pushes with ErrClosed and dead-letters what
// it still held.
func TestClosedConnectionDeadLettersPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var dead []DeadLetter
		cfg := DefaultConfig()
		cfg.Rate, cfg.Burst = 1, 1
		srv := newTestServer(t, cfg, Options{Sink: sinkFunc(func(dl DeadLetter) {
			mu.Lock()
			dead = append(dead, dl)
			mu.Unlock()
		})})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		tryPushAll(t, c, push.High, "1", "2")
		tryPushAll(t, c, push.Low, "3")
		synctest.Wait()
		_ = pc.nc.Close() // the client goes away with 2 and 3 queued
		<-c.Done()
		if err := c.TryPush(push.High, Envelope{Frame: Frame{ID: "late"}}); !errors.Is(err, ErrClosed) {
			t.Fatalf("TryPush after close: %v; want ErrClosed", err)
		}
		if err := c.Push(context.Background(), push.High, Envelope{Frame: Frame{ID: "late"}}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Push after close: %v; want ErrClosed", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dead) != 2 || dead[0].Frame.ID != "2" || dead[1].Frame.ID != "3" ||
			dead[0].Reason != push.ReasonClosed || dead[1].Reason != push.ReasonClosed || dead[1].Priority != push.Low {
			t.Fatalf("dead letters %+v; want 2 and 3 as closed", dead)
		}
		if srv.Registry().Len() != 0 {
			t.Fatal("closed connection still registered")
		}
	})
}

// Pushes that expire while queued are dead-lettered as expired, never
// written.
func TestExpiredAtWriteTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var dead []DeadLetter
		cfg := DefaultConfig()
		cfg.Rate, cfg.Burst = 1, 1
		srv := newTestServer(t, cfg, Options{Sink: sinkFunc(func(dl DeadLetter) {
			mu.Lock()
			dead = append(dead, dl)
			mu.Unlock()
		})})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		soon := time.Now().Add(500 * time.Millisecond)
		tryPushAll(t, c, push.High, "1")
		_ = c.TryPush(push.High, Envelope{Frame: Frame{ID: "stale"}, Expires: soon})
		tryPushAll(t, c, push.High, "2")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if s := ids(pc.pushes()); s != "1 2" {
			t.Fatalf("delivered %q; want \"1 2\"", s)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dead) != 1 || dead[0].Frame.ID != "stale" || dead[0].Reason != push.ReasonExpired {
			t.Fatalf("dead letters %+v; want stale as expired", dead)
		}
	})
}

// A client that answers pings stays; one that goes silent is closed as
// idle after IdleTimeout.
func TestKeepaliveAndIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.PingInterval, cfg.IdleTimeout = 10*time.Second, 30*time.Second
		var mu sync.Mutex
		closed := map[string]wire.CloseReason{}
		srv := newTestServer(t, cfg, Options{Hooks: Hooks{OnClose: func(c *Conn, r wire.CloseReason, _ error) {
			mu.Lock()
			closed[c.Session()] = r
			mu.Unlock()
		}}})
		live, lpc := attachPipe(t, srv, "answers", true)
		silent, spc := attachPipe(t, srv, "silent", false)
		start := time.Now()
		<-silent.Done()
		if d := time.Since(start); d < cfg.IdleTimeout || d > cfg.IdleTimeout+cfg.PingInterval+abortTimeout {
			t.Fatalf("silent client closed after %v; want about %v", d, cfg.IdleTimeout)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		select {
		case <-live.Done():
			t.Fatal("a client answering pings was closed")
		default:
		}
		if n := lpc.count(wire.TypePing); n < 50 {
			t.Fatalf("live client got %d pings in 10 minutes; want one per 10s", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if closed["silent"] != wire.CloseIdle {
			t.Fatalf("silent client closed with %q; want idle", closed["silent"])
		}
		if spc.count(wire.TypeClose) != 1 {
			t.Fatal("silent client got no close frame")
		}
	})
}

// Close writes what is queued before the connection ends; what cannot be
// written by the drain deadline is dead-lettered.
func TestGracefulCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var dead []DeadLetter
		cfg := DefaultConfig()
		cfg.Rate, cfg.Burst = 1, 1 // one push a second, so the drain deadline cuts it short
		cfg.DrainTimeout = 2500 * time.Millisecond
		srv := newTestServer(t, cfg, Options{Sink: sinkFunc(func(dl DeadLetter) {
			mu.Lock()
			dead = append(dead, dl)
			mu.Unlock()
		})})
		c, pc := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		tryPushAll(t, c, push.High, "1", "2", "3", "4", "5")
		synctest.Wait()
		c.Close(wire.CloseShutdown)
		<-c.Done()
		if s := ids(pc.pushes()); s != "1 2 3" {
			t.Fatalf("written before the deadline: %q; want \"1 2 3\"", s)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dead) != 2 || dead[0].Reason != push.ReasonShutdown || dead[0].Frame.ID != "4" {
			t.Fatalf("dead letters %+v; want 4 and 5 as shutdown", dead)
		}
		// 1 went out before Close; the close frame overtakes 2 and 3.
		if pc.count(wire.TypeClose) != 1 || pc.frames[2].Type != wire.TypeClose {
			t.Fatalf("frames %v: want the close frame before the queued pushes", pc.frames)
		}
	})
}

// A connection that takes over what the one it replaces on this node had
// queued is welcomed, and written to, only once its connect hook has run:
// a client with its welcome can count on what the hook set up.
func TestTakeoverWithinNodeWelcomesAfterTheConnectHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Rate, cfg.Burst = 1, 1 // one push a second: the rest stay queued
		server, second := newPipe(t, false)
		hooked := 0
		srv := newTestServer(t, cfg, Options{Hooks: Hooks{OnConnect: func(*Conn) error {
			if hooked++; hooked == 2 {
				synctest.Wait() // had anything scheduled a writer, it would have written by now
				if n := second.count(wire.TypeWelcome) + len(second.pushes()); n > 0 {
					t.Errorf("the new connection got %d frames before its connect hook returned", n)
				}
			}
			return nil
		}}})
		first, _ := attachPipe(t, srv, "s1", false)
		synctest.Wait()
		tryPushAll(t, first, push.High, "p1", "p2", "p3")
		synctest.Wait() // p1 is written; p2 and p3 wait for tokens
		admitPipe(t, srv, server, "s1")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		second.mu.Lock()
		defer second.mu.Unlock()
		if len(second.frames) == 0 || second.frames[0].Type != wire.TypeWelcome {
			t.Fatalf("the new connection got %v first; want its welcome", second.frames)
		}
		if got := ids(second.frames[1:]); got != "p2 p3" {
			t.Fatalf("the new connection got %q after its welcome; want p2 p3", got)
		}
	})
}
