package edge

import (
	"errors"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// replaceWith closes c because next, on this node, took its session, moving
// what c still had queued to next, receipts and all.
func (c *Conn) replaceWith(next *Conn) {
	c.closeReplaced(func(e *Envelope) bool {
		next.mu.Lock()
		defer next.mu.Unlock()
		return next.enqueueLocked(e.Frame.Priority, *e) == ""
	})
}

// CloseReplaced closes the connection because a newer connection on
// another node holds its session: the client gets close reason replaced,
// and every push still queued follows the session, in order (high before
// low): one with a receipt through its [Receipt.Moved], one without
// through forward. A push forward refuses is dead-lettered as replaced.
// It does nothing if the connection is already closing.
func (c *Conn) CloseReplaced(forward func(Envelope) error) {
	c.closeReplaced(func(e *Envelope) bool {
		if e.Receipt != nil {
			e.Receipt.Moved(c.session, e)
			return true
		}
		return forward(*e) == nil
	})
}

// closeReplaced closes the connection with reason replaced, passing every
// queued push to move; those it does not take are dead-lettered as
// replaced, or, receipt-pushes, handed over (handOverUnconfirmed).
func (c *Conn) closeReplaced(move func(*Envelope) bool) {
	var refused []item
	taken := c.beginClose(wire.CloseReplaced, push.ReasonReplaced, false, abortTimeout)
	for i := range taken {
		if !move(&taken[i].e) {
			refused = append(refused, taken[i])
		}
	}
	c.settleLeft(refused, push.ReasonReplaced)
}

// Close ends the connection gracefully: intake stops at once, a close frame
// with the reason goes out first, what is queued is written until the drain
// timeout, and what is left then is dead-lettered (reason shutdown for
// CloseShutdown, closed otherwise). Active requests are canceled. Close does
// not wait; [Conn.Done] is closed when the connection has ended.
func (c *Conn) Close(reason wire.CloseReason) {
	leftover := push.ReasonClosed
	if reason == wire.CloseShutdown {
		leftover = push.ReasonShutdown
	}
	c.beginClose(reason, leftover, true, c.srv.cfg.DrainTimeout)
}

// abort closes the connection without writing what is queued: a close frame
// goes out (best effort, for up to abortTimeout) and every queued push is
// dead-lettered with leftover.
func (c *Conn) abort(reason wire.CloseReason, leftover push.Reason) {
	c.settleLeft(c.beginClose(reason, leftover, false, abortTimeout), leftover)
}

// abortProtocol aborts the connection for a client that broke the
// protocol (err), with reason protocol and err's text as the close
// frame's message; WebSocket code 1007 for text that is not UTF-8 (RFC
// 6455 §8.1), 1002 for anything else.
func (c *Conn) abortProtocol(err error) { c.abortWith(wire.CloseProtocol, err) }

// abortWith aborts the connection with reason and err's text as the close
// frame's message (on WebSocket with code 1007 for text that is not
// UTF-8); queued pushes are dead-lettered closed.
func (c *Conn) abortWith(reason wire.CloseReason, err error) {
	c.mu.Lock()
	if c.state == stateOpen {
		c.closeMessage = err.Error()
		if errors.Is(err, wire.ErrInvalidUTF8) {
			c.closeCode = wsInvalidData
		}
	}
	c.mu.Unlock()
	c.abort(reason, push.ReasonClosed)
}

// wsInvalidData is the WebSocket close code for text that is not UTF-8
// (RFC 6455 §7.4.1).
const wsInvalidData = 1007

// deadLetter hands the connection's pushes, in order, to their receipts,
// or to the sink for those without, with reason. Once the sink or a
// receipt has panicked on the connection they are counted and logged as
// lost instead; a panic there counts the push it panicked on and the rest
// lost the same way, and goes on to the goroutine's recover, which closes
// the connection.
func (c *Conn) deadLetter(items []item, reason push.Reason) {
	i, returned := 0, false
	defer func() {
		if !returned {
			c.sinkPanicked.Store(true)
			c.srv.lost(c.session, items[i:], reason)
		}
	}()
	for ; i < len(items) && !c.sinkPanicked.Load(); i++ {
		c.srv.deadLetterItem(c.session, &items[i], reason)
	}
	c.srv.lost(c.session, items[i:], reason)
	returned = true
}

// beginClose starts closing: intake stops, requests are canceled, a close
// frame is due, and the reader wakes at the deadline to finish. A graceful
// close leaves the queues to the writer; an abrupt one takes them out and
// returns them. It does nothing if the connection is already closing.
func (c *Conn) beginClose(reason wire.CloseReason, leftover push.Reason, graceful bool, timeout time.Duration) []item {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return nil
	}
	c.state, c.closeReason, c.leftover = stateDraining, reason, leftover
	c.drainDeadline = time.Now().Add(timeout)
	c.out.closing = true
	var taken []item
	if !graceful {
		taken = c.takeQueuedLocked()
	}
	c.cancelRequestsLocked()
	c.wakeWaitersLocked()
	c.wakeWriterLocked()
	_ = c.nc.SetReadDeadline(c.drainDeadline) // wakes the reader to finish
	return taken
}

// terminate ends the connection now: the socket is closed, every queued
// push is dead-lettered and every receipt-push queued or unconfirmed is
// handed over (handOverUnconfirmed). A connection that was already
// closing keeps the reason it was closing with; terminate returns the
// dead-letter reason in effect. Safe to call more than once.
func (c *Conn) terminate(leftover push.Reason, reason wire.CloseReason, cause error) push.Reason {
	c.mu.Lock()
	if c.state == stateClosed {
		leftover = c.leftover
		c.mu.Unlock()
		return leftover
	}
	if c.state == stateDraining {
		leftover = c.leftover
	} else {
		c.closeReason, c.closeErr = reason, cause
	}
	c.state, c.leftover = stateClosed, leftover
	taken := c.takeQueuedLocked()
	window := c.win.takeAll()
	c.srv.metrics.unconfirmedNow.Add(-int64(len(window)))
	c.out.closing, c.out.ping, c.out.pong, c.out.welcome = false, false, nil, false
	c.cancelRequestsLocked()
	c.wakeWaitersLocked()
	if c.writer == writerSleeping {
		c.rateTimer.Stop()
		c.writer = writerIdle
	}
	c.mu.Unlock()
	_ = c.nc.Close()
	c.handOverUnconfirmed(window)
	c.settleLeft(taken, leftover)
	return leftover
}

// takeQueuedLocked empties the queues and returns the pushes that were in
// them, high before low. Response frames are dropped: their requests are
// canceled.
func (c *Conn) takeQueuedLocked() []item {
	o := &c.out
	if o.high.len()+o.low.len() == 0 && o.resp.len() == 0 {
		return nil
	}
	taken := make([]item, 0, o.high.len()+o.low.len())
	o.high.drain(func(it item) { taken = append(taken, it) })
	o.low.drain(func(it item) { taken = append(taken, it) })
	o.resp.drain(func(item) {})
	o.bytes, o.looseErrors = [2]int{}, 0
	return taken
}

// wakeWaitersLocked wakes producers blocked in Push and request streams
// waiting for room.
func (c *Conn) wakeWaitersLocked() {
	c.wakePushersLocked()
	for _, r := range c.reqs {
		r.wakeLocked()
	}
}

// wakePushersLocked tells producers blocked in Push to look again.
func (c *Conn) wakePushersLocked() { c.room.wakeLocked() }

// releaseWriterLocked lets go of the write side.
func (c *Conn) releaseWriterLocked() {
	c.writer = writerIdle
	c.writerGone.wakeLocked()
}

// waitWriterGone waits until no one owns the write side. Called by the
// reader goroutine after terminate, when nothing can schedule a writer.
func (c *Conn) waitWriterGone() {
	c.mu.Lock()
	if c.writer == writerIdle {
		c.mu.Unlock()
		return
	}
	gone := c.writerGone.waitLocked()
	c.mu.Unlock()
	<-gone
}
