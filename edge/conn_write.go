package edge

import (
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// writer is the state of one owner of a connection's write side while it
// writes a batch: the encoded bytes and the frames they hold, so that a
// failed write, or a panic, can dead-letter them. A shared flusher keeps
// one for its life; an on-demand owner takes one from a pool. A list
// handed to the sink or a hook whose pushes are settled is taken out of w
// first, so a panic there never counts them twice (see takeHeld).
type writer struct {
	buf     []byte
	items   []item // frames encoded into buf, in order
	expired []item // pushes that expired before they could be written
	shared  bool   // a pooled flusher: it must never block on a socket
	// While encode runs, items[kept:next] are settled (moved down to
	// items[:kept], or dead-lettered); both are 0 otherwise.
	kept, next int

	// State of the raw write callback, set by tryWrite.
	p   []byte
	n   int
	err error
	cb  func(fd uintptr) bool
}

func newWriter(shared bool) *writer {
	w := &writer{shared: shared}
	w.cb = w.writeFD
	return w
}

// writers are the buffers of on-demand owners; a connection with nothing to
// write holds none.
var writers = sync.Pool{New: func() any { return newWriter(false) }}

// reset forgets the batch, keeping capacity but no references.
func (w *writer) reset() {
	clear(w.items)
	w.items, w.buf = w.items[:0], w.buf[:0]
}

// takeHeld empties w after a panic and returns the pushes it still held:
// taken from the queues, and neither written nor settled (its
// receipt-pushes, but expired ones, are in the window and stay there).
// Response frames are dropped: their requests end with the connection.
func (w *writer) takeHeld() []item {
	held := pushesOf(nil, w.items[:w.kept])
	held = pushesOf(held, w.items[w.next:])
	held = append(held, w.expired...) // pushes only, none in the window
	clear(w.expired)
	w.expired, w.kept, w.next = w.expired[:0], 0, 0
	w.reset()
	return held
}

// pushesOf appends the pushes among items to dst, but for receipt-pushes:
// a batch's are in the window from the moment they were taken, and the
// window settles them.
func pushesOf(dst, items []item) []item {
	for _, it := range items {
		if it.req == nil && it.e.Frame.Type == wire.TypePush && !it.e.Frame.WantsReceipt {
			dst = append(dst, it)
		}
	}
	return dst
}

// control is the set of control frames taken into one batch.
type control struct {
	welcome, ping, close bool
	pong                 []byte
	reason               wire.CloseReason
	message              string // the close frame's
}

func (k *control) any() bool { return k.welcome || k.ping || k.close || k.pong != nil }

// writeOnce takes one batch of what is ready and writes it. It reports
// whether the caller still owns the write side and should call again; false
// means ownership was released or passed on.
func (c *Conn) writeOnce(w *writer) bool {
	var now lazyNow
	c.mu.Lock()
	if c.state == stateClosed {
		c.releaseWriterLocked()
		c.mu.Unlock()
		return false
	}
	ctl, wait := c.fillLocked(w, &now)
	if !ctl.any() && len(w.items) == 0 && len(w.expired) == 0 {
		return c.idleLocked(w, wait) // unlocks
	}
	c.mu.Unlock()
	c.deadLetterExpired(w)
	c.encode(w, &ctl)
	if len(w.buf) == 0 {
		return true
	}
	handedOff, err := c.writeBuf(w)
	if handedOff {
		return false
	}
	return c.afterWrite(w, err)
}

// fillLocked moves what is ready into w: the due control frames, then
// frames in priority order with the fairness rule, up to the batch limits.
// Expired pushes go to w.expired. When pushes wait for rate-limit tokens it
// stops and returns how long until the next token.
func (c *Conn) fillLocked(w *writer, now *lazyNow) (ctl control, wait time.Duration) {
	o, cfg := &c.out, &c.srv.cfg
	ctl = c.takeControlLocked()
	size := 0
fill:
	for len(w.items) < cfg.BatchFrames && size < cfg.BatchBytes {
		src := o.next(cfg, now)
		if src == fromNone {
			break
		}
		if src != fromResp {
			q := &o.high
			if src == fromLow {
				q = &o.low
			}
			if exp := q.peek().e.Expires; !exp.IsZero() && !now.get().Before(exp) {
				w.expired = append(w.expired, o.popPush(q, q.peek().e.Frame.Priority))
				continue
			}
			switch {
			case q.peek().wantsReceipt() && c.win.full(cfg.ReceiptWindow):
				// Back-pressure: the push waits for room in the window, and
				// so do the pushes behind it; responses need no room.
				if o.resp.n == 0 {
					break fill
				}
				src = fromResp
			default:
				if wait = c.rateWaitLocked(now); wait > 0 {
					break fill
				}
			}
		}
		it := o.take(src, cfg, now)
		if it.req != nil {
			it.req.poppedLocked()
		}
		if it.wantsReceipt() {
			c.holdLocked(it) // before the write: the client may confirm it as soon as it has the bytes
		}
		size += it.e.Frame.Len()
		w.items = append(w.items, it)
	}
	if len(w.items) > 0 || len(w.expired) > 0 {
		c.wakePushersLocked()
	}
	return ctl, wait
}

func (c *Conn) takeControlLocked() control {
	o := &c.out
	if !o.hasControl() {
		return control{}
	}
	ctl := control{welcome: o.welcome, ping: o.ping, pong: o.pong}
	if o.closing && !o.closeSent {
		ctl.close, ctl.reason, ctl.message, o.closeSent = true, c.closeReason, c.closeMessage, true
	}
	o.welcome, o.ping, o.pong = false, false, nil
	return ctl
}

// rateWaitLocked takes a token for one push, or returns how long until one
// is available.
func (c *Conn) rateWaitLocked(now *lazyNow) time.Duration {
	if c.limiter == nil || c.limiter.AllowN(now.get(), 1) {
		return 0
	}
	missing := 1 - c.limiter.TokensAt(now.get())
	return max(time.Duration(math.Ceil(missing/float64(c.limiter.Limit())*1e9)), time.Microsecond)
}

// idleLocked is reached when nothing is ready: the owner sleeps until a
// rate-limit token, finishes a drain, or lets go. Called with mu held; it
// unlocks. It returns false: the caller no longer owns the write side.
func (c *Conn) idleLocked(w *writer, wait time.Duration) bool {
	switch {
	case wait > 0:
		c.writer = writerSleeping
		if c.rateTimer == nil {
			c.rateTimer = time.AfterFunc(wait, c.rateWake)
		} else {
			c.rateTimer.Reset(wait)
		}
		c.mu.Unlock()
	case c.state == stateDraining && c.out.closeSent && !c.out.goodbye:
		c.out.goodbye = true
		c.mu.Unlock()
		c.sayGoodbye(w)
		c.mu.Lock()
		c.releaseWriterLocked()
		c.mu.Unlock()
	default:
		c.out.idle()
		c.releaseWriterLocked()
		c.mu.Unlock()
	}
	return false
}

// rateWake runs on the rate timer: the write side is owned again.
func (c *Conn) rateWake() {
	c.mu.Lock()
	if c.writer == writerSleeping {
		c.writer = writerRunning
		c.srv.sched.schedule(c)
	}
	c.mu.Unlock()
}

// sayGoodbye ends a drained connection's output: the transport's closing
// bytes, then a half-close. The reader sees the client close its side, or
// the drain deadline, and terminates.
func (c *Conn) sayGoodbye(w *writer) {
	c.mu.Lock()
	reason, code := c.closeReason, c.closeCode
	c.mu.Unlock()
	w.buf = c.fr.appendGoodbye(w.buf[:0], reason, code)
	if len(w.buf) > 0 {
		if c.srv.cfg.WriteTimeout > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		}
		_, _ = c.nc.Write(w.buf)
	}
	w.reset()
	if hc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}

func (c *Conn) deadLetterExpired(w *writer) {
	if len(w.expired) == 0 {
		return
	}
	expired := w.expired
	w.expired = nil // taken out of w: a panic in the sink accounts for them
	c.deadLetter(expired, push.ReasonExpired)
	clear(expired)
	w.expired = expired[:0]
}

// encode writes the batch into w.buf: control frames first, then frames in
// the order taken, each passed through the BeforeSend hook. A frame the hook
// made unencodable is dead-lettered as invalid.
func (c *Conn) encode(w *writer, ctl *control) {
	b := w.buf[:0]
	if ctl.welcome {
		b, _ = c.fr.appendFrame(b, &Frame{Type: wire.TypeWelcome, ID: c.session, Name: c.srv.node})
	}
	if ctl.pong != nil {
		b = c.fr.appendPong(b, ctl.pong)
	}
	if ctl.ping {
		b = c.fr.appendPing(b)
	}
	if ctl.close {
		b, _ = c.fr.appendFrame(b, &Frame{Type: wire.TypeClose, Name: string(ctl.reason), Payload: []byte(ctl.message)})
	}
	for i := range w.items {
		f := &w.items[i].e.Frame
		if hook := c.srv.hooks.BeforeSend; hook != nil {
			hook(c, f)
		}
		var err error
		if b, err = c.fr.appendFrame(b, f); err != nil {
			w.next = i + 1
			if f.Type == wire.TypePush && c.unhold(&w.items[i]) {
				c.deadLetter(w.items[i:i+1], push.ReasonInvalid)
			}
			continue
		}
		w.items[w.kept] = w.items[i]
		w.kept, w.next = w.kept+1, i+1
	}
	clear(w.items[w.kept:])
	w.items, w.buf = w.items[:w.kept], b
	w.kept, w.next = 0, 0
}

// writeBuf writes w.buf. It first tries without waiting; if the socket
// would block, a shared flusher hands the rest to a goroutine of the
// connection's own (handedOff), and any other owner waits, for at most
// WriteTimeout.
func (c *Conn) writeBuf(w *writer) (handedOff bool, err error) {
	p := w.buf
	if c.raw != nil {
		n, err := w.tryWrite(c.raw, p)
		if err != nil {
			return false, err
		}
		if n == len(p) {
			return false, nil
		}
		if w.shared {
			c.handoff(w, n)
			return true, nil
		}
		p = p[n:]
	}
	if c.srv.cfg.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	}
	_, err = c.nc.Write(p)
	return false, err
}

// tryWrite writes what the socket takes now without waiting. It returns
// the bytes written; an error only when the socket failed.
func (w *writer) tryWrite(rc syscall.RawConn, p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	if err := rc.Write(w.cb); err != nil {
		return 0, err
	}
	n, err := w.n, w.err
	w.p, w.err = nil, nil
	return n, err
}

// writeFD is the raw write callback. It always returns true (never asks
// the poller to wait), recording progress and errors in w.
func (w *writer) writeFD(fd uintptr) bool {
	for w.n < len(w.p) {
		n, err := sysWrite(fd, w.p[w.n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		}
		w.n += n
	}
	return true
}

// handoff passes the rest of a write that would block, and the write side
// with it, to a goroutine of the connection's own, which keeps writing until
// the connection is idle. The shared flusher moves on.
func (c *Conn) handoff(w *writer, written int) {
	hw := writers.Get().(*writer)
	hw.buf = append(hw.buf[:0], w.buf[written:]...)
	hw.items = append(hw.items[:0], w.items...)
	w.reset()
	c.srv.wg.Go(func() {
		defer writers.Put(hw)
		if c.finishHandoff(hw) {
			c.runWriter(hw)
		}
	})
}

// finishHandoff writes what a flusher passed on and settles the batch. It
// reports whether the caller still owns the write side; a panic is
// contained like runWriter's.
func (c *Conn) finishHandoff(w *writer) (more bool) {
	defer c.recoverWriter(w, PanicWriter)
	if c.srv.cfg.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	}
	_, err := c.nc.Write(w.buf)
	return c.afterWrite(w, err)
}

// runWriter owns the write side, on a goroutine of the connection's own,
// until nothing is ready. A panic closes this connection only
// (recoverWriter) and ends the turn.
func (c *Conn) runWriter(w *writer) {
	defer c.recoverWriter(w, PanicWriter)
	for c.writeOnce(w) {
	}
}

// flushOnce is a shared flusher's turn for c: one batch. It reports whether
// the flusher still owns c's write side. A panic closes c only and the
// flusher goes on with the next connection.
func (c *Conn) flushOnce(w *writer) (more bool) {
	defer c.recoverWriter(w, PanicFlusher)
	return c.writeOnce(w)
}

// afterWrite settles a batch. On error the connection ends, the batch's
// pushes are dead-lettered and the write side is released; it returns
// whether the caller still owns the write side.
func (c *Conn) afterWrite(w *writer, err error) bool {
	if err == nil {
		c.written(w)
		w.reset()
		return true
	}
	cr := wire.CloseNormal
	if errors.Is(err, os.ErrDeadlineExceeded) {
		cr = wire.CloseTooSlow
	}
	leftover := c.terminate(push.ReasonWriteError, cr, &TransportError{Op: "write", Err: err})
	batch := w.items
	w.items = nil                                      // taken out of w: a panic in the sink accounts for them
	c.deadLetter(pushesOf(batch[:0], batch), leftover) // its receipt-pushes are in the window, which terminate handed over
	clear(batch)
	w.items = batch[:0]
	w.reset()
	c.mu.Lock()
	c.releaseWriterLocked()
	c.mu.Unlock()
	return false
}

// written counts a batch just written, then tells its pushes' receipts.
func (c *Conn) written(w *writer) {
	m := c.srv.metrics
	m.bytesWritten.Add(float64(len(w.buf)))
	var pushes [2]int
	receipts := false
	now := c.srv.now()
	for i := range w.items {
		it := &w.items[i]
		if it.e.Frame.Type != wire.TypePush {
			continue
		}
		pushes[it.e.Frame.Priority&1]++
		m.queueWait.Observe((now - it.at).Seconds())
		receipts = receipts || it.e.Receipt != nil
	}
	if n := pushes[0] + pushes[1]; n > 0 {
		m.batchSize.Observe(float64(n))
		m.written[push.High].Add(float64(pushes[push.High]))
		m.written[push.Low].Add(float64(pushes[push.Low]))
	}
	if receipts { // a batch of pushes made in the process has none
		tellWritten(w)
	}
}

// tellWritten tells the receipts of a written batch's pushes. The batch is
// taken out of w meanwhile: its pushes are delivered, so a panic in a
// receipt leaves none to dead-letter.
func tellWritten(w *writer) {
	batch := w.items
	w.items = nil
	for i := range batch {
		if e := &batch[i].e; e.Receipt != nil {
			e.Receipt.Written(e)
		}
	}
	w.items = batch
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
