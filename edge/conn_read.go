package edge

import (
	"bufio"
	"cmp"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
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
// finished. A panic on it ends this connection only (recoverReader).
func (c *Conn) readLoop() {
	defer c.finish()
	defer c.recoverReader()
	c.lastRead = time.Now()
	for c.armReadDeadline() {
		err := c.waitReadable()
		if err == nil {
			err = c.readFrames()
		}
		switch {
		case err == nil, errors.Is(err, errPaused):
		case isTimeout(err):
			c.onReadTimeout()
		case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrTooLarge):
			c.abortProtocol(err)
			c.discardInput()
		case errors.Is(err, errWSClose):
			c.abort(wire.CloseNormal, push.ReasonClosed) // the close frame answered (RFC 6455 §5.5.1)
			c.discardInput()
		case errors.Is(err, errOverLimit):
			c.abortWith(wire.CloseOverloaded, err)
			c.discardInput()
		default:
			c.terminate(push.ReasonClosed, wire.CloseNormal, readErr(err))
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

// errWSClose: the client sent a WebSocket close frame, which the
// connection answers with its own before it ends.
var errWSClose = errors.New("client closed the websocket")

// errPaused: the reader stops between frames, giving back its buffer, to
// wait for the client's next bytes.
var errPaused = errors.New("read paused between frames")

func (c *Conn) waitReadable() error {
	if c.raw == nil || len(c.in.pending) > 0 {
		return nil
	}
	return waitReadable(c.raw)
}

// readFrames handles every frame that has arrived, with a buffer borrowed
// for as long as bytes are buffered.
func (c *Conn) readFrames() error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(&c.in)
	c.in.br = br
	defer func() {
		c.in.releaseFrame()
		c.in.br = nil
		br.Reset(nil)
		readers.Put(br)
	}()
	for {
		c.in.frameStart()
		body, err := c.fr.readFrame(c, br)
		if err != nil {
			return cmp.Or(c.in.failed, err) // a framing may report a refused read as a cut frame
		}
		if err := c.handle(body); err != nil {
			return err
		}
		if br.Buffered() == 0 {
			return nil
		}
	}
}

// input is what a connection's frames are read through: the bytes the
// client sent along with its handshake, then the socket. It keeps the
// keepalive clock apart from frame parsing: a read deadline that fires
// while a frame is partly read runs the keepalive step, and the read goes
// on, so a timeout never costs the parser bytes it already has. Only
// between frames does the parser get errPaused instead, so that the reader
// can wait without a buffer. Every byte read is activity, control frames
// included. Owned by the reader goroutine.
type input struct {
	c       *Conn
	pending []byte        // sent with the handshake; read before the socket
	br      *bufio.Reader // the buffer reading through input, while frames are read
	read    int64         // bytes read so far
	start   int64         // bytes consumed when the frame being read began
	control int64         // bytes of WebSocket control frames consumed since start
	// reserved is what the frame being read holds of the node's budget
	// for partly received frames (reserveFrame); failed is why Read
	// refused to read on, if it did.
	reserved int64
	failed   error
}

// frameStart marks the start of a frame, giving back the budget the last
// one reserved: its body is handled.
func (in *input) frameStart() {
	in.start, in.control = in.read-int64(in.br.Buffered()), 0
	in.releaseFrame()
}

// betweenFrames reports whether everything read since the frame began has
// been consumed and was control frames: nothing of a data frame is held.
func (in *input) betweenFrames() bool {
	return in.br.Buffered() == 0 && in.read-in.start == in.control
}

// Read implements io.Reader for the connection's buffer.
func (in *input) Read(p []byte) (int, error) {
	if len(in.pending) > 0 {
		n := copy(p, in.pending)
		if in.pending = in.pending[n:]; len(in.pending) == 0 {
			in.pending = nil
		}
		in.got(n)
		return n, nil
	}
	for {
		if in.control > 0 && in.betweenFrames() {
			return 0, errPaused // only control frames so far: wait without the buffer
		}
		if err := in.reserveFrame(); err != nil {
			in.failed = err
			return 0, err
		}
		n, err := in.c.nc.Read(p)
		if n > 0 || !isTimeout(err) {
			in.got(n)
			return n, err
		}
		in.c.onReadTimeout()
		if !in.c.armReadDeadline() {
			return 0, net.ErrClosed
		}
		if in.betweenFrames() {
			return 0, errPaused
		}
	}
}

func (in *input) got(n int) {
	if n > 0 {
		in.read += int64(n)
		in.c.lastRead = time.Now()
	}
}

// handle acts on one client frame. Only transport-level problems return an
// error; a bad frame is answered with an error frame.
func (c *Conn) handle(body []byte) error {
	if err := c.countFrame(); err != nil {
		return err
	}
	f, err := wire.Decode(body)
	if err != nil {
		c.protocolError("", &ProtocolError{Code: wire.CodeMalformed, Message: err.Error()})
		return nil
	}
	switch f.Type {
	case wire.TypeRequest:
		c.startRequest(&f)
	case wire.TypeCancel:
		c.cancelRequest(f.ID)
	case wire.TypeReceipt:
		return c.onReceipt(f.Payload)
	case wire.TypeRefresh:
		c.onRefresh(f.Payload)
	case wire.TypePing:
		c.queuePong(f.Payload)
	case wire.TypePong:
	case wire.TypeClose:
		return errClientClose
	default:
		c.protocolError(f.ID, &ProtocolError{Code: wire.CodeUnexpectedFrame, Message: "a client may not send " + f.Type.String() + " frames"})
	}
	return nil
}

// onReceipt confirms the push ids a receipt frame lists. A malformed one
// returns its error (wrapping wire.ErrMalformed): the reader closes the
// connection with reason protocol.
func (c *Conn) onReceipt(payload []byte) error {
	return c.confirm(payload)
}

// wsControlHeader is the header size of every control frame a client
// sends: two bytes and the mask (a control payload fits the 7-bit length).
const wsControlHeader = 6

// onWSControl handles WebSocket control frames from the client.
func (c *Conn) onWSControl(op byte, payload []byte) error {
	c.in.control += int64(wsControlHeader + len(payload))
	if err := c.countFrame(); err != nil {
		return err
	}
	switch op {
	case wire.WSPing:
		c.queuePong(payload)
	case wire.WSClose:
		return errWSClose
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
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Time
	switch c.state {
	case stateClosed:
		return false
	case stateDraining:
		d = c.drainDeadline
	default:
		d = c.keepaliveDeadline(time.Now())
	}
	_ = c.nc.SetReadDeadline(d)
	return true
}

// keepaliveDeadline is when the client will have been silent for the ping
// interval (again every interval while it stays silent) or for the idle
// timeout, or its token expires, whichever comes first; zero with none.
func (c *Conn) keepaliveDeadline(now time.Time) time.Time {
	cfg := &c.srv.cfg
	var d time.Time
	if cfg.PingInterval > 0 {
		if d = c.lastRead.Add(cfg.PingInterval); !d.After(now) {
			d = now.Add(cfg.PingInterval)
		}
	}
	if cfg.IdleTimeout > 0 {
		if idle := c.lastRead.Add(cfg.IdleTimeout); d.IsZero() || idle.Before(d) {
			d = idle
		}
	}
	if e := c.expiryDeadline(now); !e.IsZero() && (d.IsZero() || e.Before(d)) {
		d = e
	}
	return d
}

// onReadTimeout is the keepalive step: a closing connection whose drain
// deadline passed ends now; one whose token expired is closed; a client
// silent for the idle timeout is closed; one silent for the ping interval
// gets a ping. Bytes that arrived but are not read yet (the reader woke
// late) count as activity, and are read before the token's expiry is
// checked, for a moment past it (expiryGrace): they may be a refresh.
func (c *Conn) onReadTimeout() {
	now := time.Now()
	c.mu.Lock()
	state, deadline := c.state, c.drainDeadline
	c.mu.Unlock()
	cfg := &c.srv.cfg
	silent := now.Sub(c.lastRead)
	switch {
	case state == stateDraining && !now.Before(deadline):
		c.terminate(push.ReasonClosed, wire.CloseNormal, nil)
	case state != stateOpen:
	case c.inputWaiting() && !c.graceOver(now):
		c.lastRead = now
	case c.tokenEnded(now):
		c.expire()
	case cfg.IdleTimeout > 0 && silent >= cfg.IdleTimeout:
		c.abort(wire.CloseIdle, push.ReasonClosed)
	case cfg.PingInterval > 0 && silent >= cfg.PingInterval:
		c.queuePing()
	}
}

// inputWaiting reports whether client bytes are waiting to be read.
func (c *Conn) inputWaiting() bool {
	return len(c.in.pending) > 0 || c.raw != nil && inputWaiting(c.raw)
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
			c.terminate(push.ReasonClosed, wire.CloseProtocol, nil)
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
	if reason == wire.CloseReplaced {
		m.takeovers.Inc()
	}
	if ce := c.srv.log.Check(zap.DebugLevel, "client disconnected"); ce != nil {
		ce.Write(zap.String("session", c.session), zap.String("reason", string(reason)),
			zap.Duration("connected_for", time.Since(c.started)), zap.Error(cause))
	}
	if c.srv.hooks.OnClose != nil {
		c.runCloseHook(reason, cause)
	}
	close(c.done)
}
