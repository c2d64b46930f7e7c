package tests

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// natsProxy stands between an edge node and its NATS server, on real
// sockets, so that a test can take the node's NATS away while the server
// stays up for everyone else (cut), or hold back what the server sends the
// node while the node's own publishes still go out (hold).
type natsProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and the copiers

	mu    sync.Mutex
	cond  *sync.Cond            // signalled when held, down or gone changes
	conns map[net.Conn]struct{} // guarded by mu: both ends of every proxied connection
	down  bool                  // guarded by mu: new connections are closed at once
	held  bool                  // guarded by mu: bytes from the server wait
	gone  bool                  // guarded by mu: the proxy is closed
}

// startProxy forwards a loopback port to target (host:port), closed at
// cleanup.
func startProxy(t testing.TB, target string) *natsProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &natsProxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// url is the proxy's NATS URL.
func (p *natsProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *natsProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down || p.gone {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.down || p.gone { // cut while dialing
			p.mu.Unlock()
			_, _ = c.Close(), s.Close()
			continue
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.copy(s, c, false) })
		p.wg.Go(func() { p.copy(c, s, true) })
	}
}

// copy forwards src to dst; fromServer copies wait while the proxy holds.
func (p *natsProxy) copy(dst, src net.Conn, fromServer bool) {
	defer func() {
		_, _ = dst.Close(), src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && fromServer && !p.waitReleased() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.t.Logf("proxy: %v", err)
			}
			return
		}
	}
}

// waitReleased waits while the proxy holds; false if it is cut or closed
// meanwhile.
func (p *natsProxy) waitReleased() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.held && !p.down && !p.gone {
		p.cond.Wait()
	}
	return !p.down && !p.gone
}

// cut closes every proxied connection and refuses new ones until restore:
// for the node, NATS is gone; for the server, the node is.
func (p *natsProxy) cut() {
	p.mu.Lock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// restore lets connections through again.
func (p *natsProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// hold keeps what the server sends from reaching the node until release;
// what the node sends still goes through.
func (p *natsProxy) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// release forwards what was held, and everything after it.
func (p *natsProxy) release() {
	p.mu.Lock()
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *natsProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.gone = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
