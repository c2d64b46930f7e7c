package edge

import (
	"fmt"
	"runtime/debug"

	"go.uber.org/zap"
)

// The goroutines a panic can be contained on: the label of
// pushfabric_connection_panics_total. A panic there (in the edge, in a
// hook, an authenticator or a handler) ends one connection at most, never
// the process.
const (
	PanicHandshake = "handshake" // a socket's handshake: the upgrade or hello, the authenticator, the connect hook
	PanicReader    = "reader"    // a connection's reader: client frames, the protocol-error and close hooks
	PanicRequest   = "request"   // a request's goroutine: its handler and stream, the command-end hook
)

// panicked logs a contained panic, with its stack, and counts it.
func (s *Server) panicked(where, session string, p any) {
	s.metrics.panics[where].Inc()
	s.log.Error("panic contained on a connection goroutine", zap.String("goroutine", where),
		zap.String("session", session), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
}

// recoverHandshake contains a panic on a handshake goroutine: the socket is
// closed. Deferred first by handshake, so it runs last.
func (s *Server) recoverHandshake(nc interface{ Close() error }) {
	if p := recover(); p != nil {
		s.panicked(PanicHandshake, "", p)
		_ = nc.Close()
	}
}

// recoverReader contains a panic on the reader goroutine: the connection
// ends with close reason protocol, its queued pushes dead-lettered as
// closed. Deferred by readLoop, after finish, so finish still runs.
func (c *Conn) recoverReader() {
	p := recover()
	if p == nil {
		return
	}
	c.srv.panicked(PanicReader, c.session, p)
	defer c.recoverAgain()
	c.closeAfterPanic(PanicReader, p)
	c.discardInput()
}

// recoverAgain ends the connection at once if closing it after a panic
// panicked too.
func (c *Conn) recoverAgain() {
	if p := recover(); p != nil {
		c.srv.panicked(PanicReader, c.session, p)
		c.terminate(ReasonClosed, CloseProtocol, nil)
	}
}

// recoverRequest contains a panic on a request's goroutine outside its
// handler (a handler's own panic fails just its request): the connection
// closes with reason protocol.
func (c *Conn) recoverRequest() {
	if p := recover(); p != nil {
		c.srv.panicked(PanicRequest, c.session, p)
		c.closeAfterPanic(PanicRequest, p)
	}
}

// closeAfterPanic starts closing the connection with reason protocol,
// dead-lettering what is queued as closed; the close hook's error says
// which goroutine panicked.
func (c *Conn) closeAfterPanic(where string, p any) {
	c.abort(CloseProtocol, ReasonClosed)
	c.mu.Lock()
	if c.closeErr == nil {
		c.closeErr = fmt.Errorf("edge: panic on the %s goroutine: %v", where, p)
	}
	c.mu.Unlock()
}

// runConnectHook runs OnConnect; a panic in it refuses the connection like
// an error.
func (s *Server) runConnectHook(c *Conn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.panicked(PanicHandshake, c.session, p)
			err = fmt.Errorf("connect hook panicked: %v", p)
		}
	}()
	return s.hooks.OnConnect(c)
}

// runCloseHook runs OnClose; a panic in it is contained, so the connection
// still ends completely.
func (c *Conn) runCloseHook(reason CloseReason, cause error) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.panicked(PanicReader, c.session, p)
		}
	}()
	c.srv.hooks.OnClose(c, reason, cause)
}
