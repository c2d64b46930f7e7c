package edge

import (
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// A push whose envelope sets Frame.WantsReceipt (its producer asked for
// `Push-Ack: received`) is a receipt-push: it is held in the connection's
// window of unconfirmed pushes from the moment the writer takes it (the
// client may confirm it before the write returns) until the client
// confirms its id with a receipt frame (wire.TypeReceipt), the receipt
// timeout passes, or the connection ends. A BeforeSend hook must leave
// such a push's id alone: the window knows it by the id it was queued
// with. ("Receipt" alone, in this package, is a push's reply path: the
// [Receipt] interface. A push a receipt frame names is "confirmed".)
//
//   - confirmed: its [Confirmable] receipt is told Confirmed; nothing else
//     becomes of it.
//   - timed out on a live connection: dead-lettered unconfirmed; a later
//     receipt frame naming it is ignored.
//   - the connection ends, for any reason, with receipt-pushes in the
//     window or still queued: each goes to the session's newer connection
//     on this node if there is one, else through its receipt's Moved (the
//     bus hands it to the session's subject, and dead-letters it
//     unconfirmed when no node takes it); one without a receipt goes to
//     the dead-letter sink as unconfirmed.
//
// The window is bounded by Config.ReceiptWindow: while it is full, a
// receipt-push at the head of its queue waits there, and the pushes behind
// it (of both priorities) wait too: back-pressure, no drop. Response
// frames, which take no room, still go out. New arrivals meet the queue
// bounds as usual (queue_full).

// unconfirmed is a connection's window: its receipt-pushes taken to be
// written and not yet confirmed, in write order. Guarded by the connection's mu. An empty
// window holds no memory but its (nil) map.
type unconfirmed struct {
	order []*held          // in write order; settled ones are compacted away
	byID  map[string]*held // the oldest held push of each id; the rest chain through same
	n     int              // held and not settled
	timer *time.Timer      // fires at the oldest deadline; nil until first armed
	armed bool             // timer is set for the oldest held push
}

// held is one receipt-push in the window.
type held struct {
	it       item
	deadline time.Time // zero without a receipt timeout
	same     *held     // the next held push with the same id, in write order
	settled  bool      // confirmed, timed out or taken at the end
}

// full reports whether the window has no room.
func (u *unconfirmed) full(limit int) bool { return u.n >= limit }

// add holds it, being written now, until deadline (zero: no timeout). It
// reports whether the timer must be armed.
func (u *unconfirmed) add(it item, deadline time.Time) (arm bool) {
	h := &held{it: it, deadline: deadline}
	if u.byID == nil {
		u.byID = make(map[string]*held)
	}
	if first := u.byID[it.e.Frame.ID]; first != nil {
		for first.same != nil {
			first = first.same
		}
		first.same = h
	} else {
		u.byID[it.e.Frame.ID] = h
	}
	u.order = append(u.order, h)
	u.n++
	return !deadline.IsZero() && !u.armed
}

// confirm settles every held push with id, appending them to dst; an id
// not held adds nothing. id is looked up in place, not copied.
func (u *unconfirmed) confirm(dst []item, id []byte) []item {
	h := u.byID[string(id)]
	if h == nil {
		return dst
	}
	delete(u.byID, h.it.e.Frame.ID)
	for ; h != nil; h = h.same {
		h.settled = true
		u.n--
		dst = append(dst, h.it)
	}
	u.compact()
	return dst
}

// expire settles the held pushes whose deadline is not after now,
// appending them to dst, and returns the next deadline (zero if none).
func (u *unconfirmed) expire(dst []item, now time.Time) ([]item, time.Time) {
	for len(u.order) > 0 {
		h := u.order[0]
		if h.settled {
			u.order[0], u.order = nil, u.order[1:]
			continue
		}
		if h.deadline.IsZero() || h.deadline.After(now) {
			return dst, h.deadline
		}
		u.order[0], u.order = nil, u.order[1:]
		if next := h.same; next != nil { // h was the oldest of its id
			u.byID[h.it.e.Frame.ID] = next
		} else {
			delete(u.byID, h.it.e.Frame.ID)
		}
		h.settled = true
		u.n--
		dst = append(dst, h.it)
	}
	return dst, time.Time{}
}

// dropNewest settles the push held last with id, reporting whether there
// was one.
func (u *unconfirmed) dropNewest(id string) bool {
	h := u.byID[id]
	if h == nil {
		return false
	}
	var prev *held
	for ; h.same != nil; prev, h = h, h.same {
	}
	if prev == nil {
		delete(u.byID, id)
	} else {
		prev.same = nil
	}
	h.settled = true
	u.n--
	u.compact()
	return true
}

// takeAll empties the window, returning what it held in write order.
func (u *unconfirmed) takeAll() []item {
	var taken []item
	for _, h := range u.order {
		if !h.settled {
			taken = append(taken, h.it)
		}
	}
	u.order, u.byID, u.n = nil, nil, 0
	if u.timer != nil {
		u.timer.Stop()
	}
	u.armed = false
	return taken
}

// compact drops settled pushes from the front of order, and from all of
// it once they outnumber the held ones, so that order stays within about
// twice the window.
func (u *unconfirmed) compact() {
	for len(u.order) > 0 && u.order[0].settled {
		u.order[0], u.order = nil, u.order[1:]
	}
	if len(u.order) <= 2*u.n+16 {
		return
	}
	kept := u.order[:0]
	for _, h := range u.order {
		if !h.settled {
			kept = append(kept, h)
		}
	}
	clear(u.order[len(kept):])
	u.order = kept
}

// wantsReceipt reports whether it is a receipt-push.
func (it *item) wantsReceipt() bool { return it.req == nil && it.e.Frame.WantsReceipt }

// holdLocked puts a receipt-push the writer took into the window. It is
// held from then on, while it is written: the client may confirm it as
// soon as it has the bytes, before the write returns.
func (c *Conn) holdLocked(it item) {
	var deadline time.Time
	if c.srv.cfg.ReceiptTimeout > 0 {
		deadline = time.Now().Add(c.srv.cfg.ReceiptTimeout)
	}
	if c.win.add(it, deadline) {
		c.armReceiptTimerLocked(deadline)
	}
	c.srv.metrics.unconfirmedNow.Inc()
}

// unhold takes a push the writer could not encode out of the window,
// reporting whether the caller is left to settle it: a plain push, or a
// receipt-push still held.
func (c *Conn) unhold(it *item) bool {
	if !it.wantsReceipt() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.win.dropNewest(it.e.Frame.ID) {
		return false // confirmed or handed over already
	}
	c.srv.metrics.unconfirmedNow.Dec()
	return true
}

// armReceiptTimerLocked sets the window's timer for deadline.
func (c *Conn) armReceiptTimerLocked(deadline time.Time) {
	d := time.Until(deadline)
	if c.win.timer == nil {
		c.win.timer = time.AfterFunc(d, c.receiptTimeout)
	} else {
		c.win.timer.Reset(d)
	}
	c.win.armed = true
}

// receiptTimeout runs on the window's timer: the pushes held past their
// deadline are dead-lettered unconfirmed, and the writer is woken for what
// waited for room.
func (c *Conn) receiptTimeout() {
	c.mu.Lock()
	c.win.armed = false
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	late, next := c.win.expire(nil, time.Now())
	if !next.IsZero() {
		c.armReceiptTimerLocked(next)
	}
	c.releasedLocked(len(late))
	c.mu.Unlock()
	c.srv.metrics.unconfirmed[UnconfirmedTimedOut].Add(float64(len(late)))
	c.deadLetter(late, push.ReasonUnconfirmed)
}

// releasedLocked accounts for n pushes that left the window, and wakes
// the writer if pushes wait for room.
func (c *Conn) releasedLocked(n int) {
	if n == 0 {
		return
	}
	c.srv.metrics.unconfirmedNow.Add(-int64(n))
	if c.out.high.len()+c.out.low.len()+c.out.resp.len() > 0 {
		c.wakeWriterLocked()
	}
}

// confirmChunk is how many of a receipt frame's ids are looked up in one
// hold of the connection's lock: a frame may list hundreds of thousands,
// and pushers and the writer wait for the lock meanwhile.
const confirmChunk = 256

// confirm handles a receipt frame's payload: each push held with one of
// its ids is settled, and its receipt, if [Confirmable], told. The ids are
// read in place, costing no allocation each. A malformed payload settles
// nothing and returns its error (wrapping wire.ErrMalformed).
func (c *Conn) confirm(payload []byte) error {
	var done []item
	n := 0
	c.mu.Lock()
	err := wire.EachReceiptID(payload, func(id []byte) {
		done = c.win.confirm(done, id)
		if n++; n%confirmChunk == 0 {
			c.mu.Unlock()
			c.mu.Lock()
		}
	})
	c.releasedLocked(len(done))
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.srv.metrics.receiptFrames.Inc()
	c.srv.metrics.confirmed.Add(float64(len(done)))
	for i := range done {
		if r, ok := done[i].e.Receipt.(Confirmable); ok {
			r.Confirmed(&done[i].e)
		}
	}
	return nil
}

// splitReceipts moves the receipt-pushes of items out, in order, and
// returns the rest and them.
func splitReceipts(items []item) (rest, receipts []item) {
	for _, it := range items {
		if it.wantsReceipt() {
			receipts = append(receipts, it)
		} else {
			rest = append(rest, it)
		}
	}
	return rest, receipts
}

// settleLeft accounts for pushes a closing connection will not write: the
// receipt-pushes are handed over (handOverUnconfirmed), the rest
// dead-lettered with reason.
func (c *Conn) settleLeft(items []item, reason push.Reason) {
	rest, receipts := splitReceipts(items)
	c.deadLetter(rest, reason)
	c.handOverUnconfirmed(receipts)
}

// handOverUnconfirmed makes receipt-pushes a connection could not get
// confirmed follow the session: to its newer connection on this node when
// one takes them, else through their receipt's Moved; one without a
// receipt is dead-lettered unconfirmed.
func (c *Conn) handOverUnconfirmed(items []item) {
	if len(items) == 0 {
		return
	}
	next := c.srv.reg.Get(c.session)
	var orphans []item
	for i := range items {
		e := &items[i].e
		switch {
		case next != nil && next != c && next.takeOver(e):
		case e.Receipt != nil:
			e.Receipt.Moved(c.session, e)
		default:
			orphans = append(orphans, items[i])
			continue
		}
		c.srv.metrics.unconfirmed[UnconfirmedHandedOver].Inc()
	}
	c.srv.metrics.unconfirmed[UnconfirmedDeadLettered].Add(float64(len(orphans)))
	c.deadLetter(orphans, push.ReasonUnconfirmed)
}

// takeOver queues a push another connection of the session could not
// finish, reporting whether it did.
func (c *Conn) takeOver(e *Envelope) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enqueueLocked(e.Frame.Priority, *e) == ""
}
