package edge

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// readBufSize is the read buffer a connection borrows while bytes are
// arriving. Client frames are small; larger ones are read past it.
const readBufSize = 4 << 10

// readers are the read buffers. A connection with no bytes arriving holds
// none: it waits for readability first.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// readLoop is the connection's long-lived goroutine. It waits for the
// client's bytes without holding a buffer, handles the frames, sends
// keepalive pings and enforces the idle and drain deadlines. It owns the
// connection's end: when it returns, everything the connection started has
// finished.
func (c *Conn) readLoop() {
	defer c.finish()
	c.lastRead = time.Now()
	for c.armReadDeadline() {
		err := c.waitReadable()
		if err == nil {
			err = c.readFrames()
		}
		switch {
		case err == nil:
		case isTimeout(err):
			c.onReadTimeout()
		case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrTooLarge):
			c.abort(CloseProtocol, ReasonClosed)
			c.discardInput()
		default:
			c.terminate(ReasonClosed, CloseNormal, readErr(err))
		}
	}
}

// readErr is nil for a client that simply went away.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, errClientClose) {
		return nil
	}
	return &TransportError{Op: "read", Err: err}
}

// errClientClose: the client sent a close frame.
var errClientClose = errors.New("client closed")

func (c *Conn) waitReadable() error {
	if c.raw == nil {
		return nil
	}
	return waitReadable(c.raw)
}

// readFrames handles every frame that has arrived, with a buffer borrowed
// for as long as bytes are buffered.
func (c *Conn) readFrames() error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(c.nc)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	for {
		body, err := c.fr.readFrame(c, br)
		if err != nil {
			return err
		}
		c.lastRead = time.Now()
		if err := c.handle(body); err != nil {
			return err
		}
		if br.Buffered() == 0 {
			return nil
		}
	}
}

// handle acts on one client frame. Only transport-level problems return an
// error; a bad frame is answered with an error frame.
func (c *Conn) handle(body []byte) error {
	f, err := wire.Decode(body)
	if err != nil {
		c.protocolError("", &ProtocolError{Code: CodeMalformed, Message: err.Error()})
		return nil
	}
	switch f.Type {
	case wire.TypeRequest:
		c.startRequest(&f)
	case wire.TypeCancel:
		c.cancelRequest(f.ID)
	case wire.TypePing:
		c.queuePong(f.Payload)
	case wire.TypePong:
	case wire.TypeClose:
		return errClientClose
	default:
		c.protocolError(f.ID, &ProtocolError{Code: CodeUnexpectedFrame, Message: "a client may not send " + f.Type.String() + " frames"})
	}
	return nil
}

// onWSControl handles WebSocket control frames from the client.
func (c *Conn) onWSControl(op byte, payload []byte) error {
	switch op {
	case wire.WSPing:
		c.queuePong(payload)
	case wire.WSClose:
		return errClientClose
	}
	return nil
}

// queuePong answers a client ping. Only the latest unanswered ping is kept.
func (c *Conn) queuePong(payload []byte) {
	c.mu.Lock()
	if c.state == stateOpen {
		c.out.pong = append(make([]byte, 0, len(payload)), payload...)
		c.wakeWriterLocked()
	}
	c.mu.Unlock()
}

// armReadDeadline sets the time the reader next wakes without input: the
// next keepalive check, or the drain deadline of a closing connection. It
// returns false once the connection is closed.
func (c *Conn) armReadDeadline() bool {
	cfg := &c.srv.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Time
	switch {
	case c.state == stateClosed:
		return false
	case c.state == stateDraining:
		d = c.drainDeadline
	case cfg.PingInterval > 0:
		d = time.Now().Add(cfg.PingInterval)
	case cfg.IdleTimeout > 0:
		d = c.lastRead.Add(cfg.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(d)
	return true
}

// onReadTimeout: a closing connection whose drain deadline passed ends
// now; a client silent for the idle timeout is closed; otherwise it gets a
// ping.
func (c *Conn) onReadTimeout() {
	now := time.Now()
	c.mu.Lock()
	state, deadline := c.state, c.drainDeadline
	c.mu.Unlock()
	switch {
	case state == stateDraining && !now.Before(deadline):
		c.terminate(ReasonClosed, CloseNormal, nil)
	case state != stateOpen:
	case c.srv.cfg.IdleTimeout > 0 && now.Sub(c.lastRead) >= c.srv.cfg.IdleTimeout:
		c.abort(CloseIdle, ReasonClosed)
	default:
		c.queuePing()
	}
}

func (c *Conn) queuePing() {
	c.mu.Lock()
	if c.state == stateOpen {
		c.out.ping = true
		c.wakeWriterLocked()
	}
	c.mu.Unlock()
}

// discardInput reads and drops what the client sends after a framing error
// (the stream cannot be parsed any more) until it closes or the close
// deadline passes.
func (c *Conn) discardInput() {
	var buf [512]byte
	for c.armReadDeadline() {
		if _, err := c.nc.Read(buf[:]); err != nil {
			if isTimeout(err) {
				c.onReadTimeout()
				continue
			}
			c.terminate(ReasonClosed, CloseProtocol, nil)
		}
	}
}

// finish runs once, as the reader goroutine ends: it waits for the
// connection's requests and writer, takes the session out of the node's
// table and fires the close hook.
func (c *Conn) finish() {
	c.reqWG.Wait()
	c.waitWriterGone()
	c.srv.forget(c)
	c.mu.Lock()
	reason, cause := c.closeReason, c.closeErr
	c.mu.Unlock()
	m := c.srv.metrics
	m.sessions.Dec()
	if d := m.disconnects[reason]; d != nil {
		d.Inc()
	}
	if reason == CloseReplaced {
		m.takeovers.Inc()
	}
	if ce := c.srv.log.Check(zap.DebugLevel, "client disconnected"); ce != nil {
		ce.Write(zap.String("session", c.session), zap.String("reason", string(reason)),
			zap.Duration("connected_for", time.Since(c.started)), zap.Error(cause))
	}
	if h := c.srv.hooks.OnClose; h != nil {
		h(c, reason, cause)
	}
	close(c.done)
}
