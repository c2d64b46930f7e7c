package edge

import (
	"fmt"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// The goroutines a panic can be contained on: the label of
// pushfabric_connection_panics_total. A panic there (in the edge, in a
// hook, an authenticator or a handler) ends one connection at most, never
// the process.
const (
	PanicHandshake = "handshake" // a socket's handshake: the upgrade or hello, the authenticator, taking the session, the connect hook
	PanicReader    = "reader"    // a connection's reader: client frames, the protocol-error and close hooks
	PanicRequest   = "request"   // a request's goroutine: its handler and stream, the command-end hook
	PanicWriter    = "writer"    // a connection's own writer goroutine: the BeforeSend hook, receipts, the dead-letter sink
	PanicFlusher   = "flusher"   // a shared flusher while it writes for a connection: the same hook, receipts and sink
)

// panicked logs a contained panic, with its stack and what else says
// where it happened, and counts it.
func (s *Server) panicked(where, session string, p any, more ...zap.Field) {
	s.metrics.panics[where].Inc()
	fields := append([]zap.Field{zap.String("goroutine", where), zap.String("session", session),
		zap.Any("panic", p), zap.ByteString("stack", debug.Stack())}, more...)
	s.log.Error("panic contained on a connection goroutine", fields...)
}

// recoverHandshake contains a panic on a handshake goroutine: the socket is
// closed. Deferred first by handshake, so it runs last.
func (s *Server) recoverHandshake(nc interface{ Close() error }) {
	if p := recover(); p != nil {
		s.panicked(PanicHandshake, "", p)
		_ = nc.Close()
	}
}

// recoverSetUp contains a panic while a connection is set up on its
// handshake goroutine, outside the connect hook (which has its own): the
// client gets no welcome, and the connection closes with reason protocol.
func (c *Conn) recoverSetUp() {
	p := recover()
	if p == nil {
		return
	}
	c.srv.panicked(PanicHandshake, c.session, p)
	defer c.recoverAgain(PanicHandshake)
	c.mu.Lock()
	c.out.welcome = false
	c.mu.Unlock()
	c.closeAfterPanic(PanicHandshake, p)
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
	defer c.recoverAgain(PanicReader)
	c.closeAfterPanic(PanicReader, p)
	c.discardInput()
}

// recoverAgain ends the connection at once if closing it after a panic
// panicked too.
func (c *Conn) recoverAgain(where string) {
	if p := recover(); p != nil {
		c.srv.panicked(where, c.session, p)
		c.terminate(push.ReasonClosed, wire.CloseProtocol, nil)
	}
}

// recoverWriter contains a panic on an owner of the connection's write
// side (its own writer goroutine, or a shared flusher writing for it): the
// pushes w held are dead-lettered closed (or with the reason the
// connection was already closing with), the connection closes with reason
// protocol (at once if it was already closing), and the write side is let
// go, so a flusher goes on serving the other connections. Deferred by each
// write-side owner; c.mu is never held across a hook or the sink.
func (c *Conn) recoverWriter(w *writer, where string) {
	p := recover()
	if p == nil {
		return
	}
	c.srv.panicked(where, c.session, p)
	held := w.takeHeld()
	defer c.releaseAfterPanic()
	defer c.recoverAgain(where)
	c.mu.Lock()
	open, reason := c.state == stateOpen, c.leftover
	c.mu.Unlock()
	if open {
		reason = push.ReasonClosed
	}
	c.settleLeft(held, reason)
	if open {
		c.closeAfterPanic(where, p)
	} else {
		c.terminate(push.ReasonClosed, wire.CloseProtocol, nil)
	}
}

// releaseAfterPanic lets go of the write side after a contained panic; a
// connection still closing gets a new owner for its close frame.
func (c *Conn) releaseAfterPanic() {
	c.mu.Lock()
	c.releaseWriterLocked()
	if c.state == stateDraining {
		c.wakeWriterLocked()
	}
	c.mu.Unlock()
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
	c.abort(wire.CloseProtocol, push.ReasonClosed)
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
func (c *Conn) runCloseHook(reason wire.CloseReason, cause error) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.panicked(PanicReader, c.session, p)
		}
	}()
	c.srv.hooks.OnClose(c, reason, cause)
}

// lost counts and logs, with their ids, pushes of session that will be
// neither written nor dead-lettered because the dead-letter sink (or a
// receipt's Dead) panicked on the connection. reason is what they would have been dead-lettered as.
func (s *Server) lost(session string, items []item, reason push.Reason) {
	if len(items) == 0 {
		return
	}
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].e.Frame.ID
	}
	s.metrics.lost[LostSinkPanic].Add(float64(len(items)))
	s.log.Error("pushes lost: the dead-letter sink panicked", zap.String("session", session),
		zap.String("reason", string(reason)), zap.Int("count", len(ids)), zap.Strings("push_ids", ids))
}
