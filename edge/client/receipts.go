package client

import (
	"sync"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// Receipts. A push whose producer asked for `Push-Ack: received` arrives
// with Frame.WantsReceipt set, and the edge holds it unconfirmed until the
// client confirms its id with a receipt frame; the producer then hears
// `received`. By default a Conn or Session confirms such a push once the
// application has taken it: after OnPush returns, or, with Recv, at the
// next Recv call or receiptDelay later, whichever comes first, several
// ids to a frame. With Options.ManualReceipts the application confirms
// them itself with Confirm, when it has done what the push asked.

// receiptDelay is how long a confirmation taken with Recv waits for more
// to share its frame.
const receiptDelay = 5 * time.Millisecond

// maxReceiptPayload bounds one receipt frame's payload; more ids go in
// further frames of the same write.
const maxReceiptPayload = 8 << 10

// confirmer batches the confirmations of pushes the application has
// taken, and sends them with send. Safe for concurrent use.
type confirmer struct {
	send func(ids []string) error

	mu      sync.Mutex
	pending []string    // guarded by mu
	timer   *time.Timer // guarded by mu: armed while pending is not empty
	stopped bool        // guarded by mu: nothing is sent any more
}

// add queues id, to be sent within receiptDelay.
func (k *confirmer) add(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	k.pending = append(k.pending, id)
	if len(k.pending) > 1 {
		return
	}
	if k.timer == nil {
		k.timer = time.AfterFunc(receiptDelay, k.flush)
	} else {
		k.timer.Reset(receiptDelay)
	}
}

// flush sends what is pending, in one write.
func (k *confirmer) flush() {
	k.mu.Lock()
	ids := k.pending
	k.pending = nil
	if k.timer != nil {
		k.timer.Stop()
	}
	k.mu.Unlock()
	if len(ids) > 0 {
		_ = k.send(ids) // a connection that ended confirms nothing: the edge hands the pushes on
	}
}

// stop flushes, and sends nothing after.
func (k *confirmer) stop() {
	k.flush()
	k.mu.Lock()
	k.stopped = true
	k.mu.Unlock()
}

// appendReceipts appends to dst the receipt frames confirming ids, as
// many as their length needs; enc encodes one frame.
func appendReceipts(dst []byte, ids []string, enc func([]byte, *Frame) ([]byte, error)) ([]byte, error) {
	for len(ids) > 0 {
		n, size := 0, 0
		for n < len(ids) && (n == 0 || size+1+len(ids[n]) <= maxReceiptPayload) {
			size += 1 + len(ids[n])
			n++
		}
		payload, err := wire.AppendReceipt(make([]byte, 0, size), ids[:n]...)
		if err != nil {
			return dst, err
		}
		if dst, err = enc(dst, &Frame{Type: wire.TypeReceipt, Payload: payload}); err != nil {
			return dst, err
		}
		ids = ids[n:]
	}
	return dst, nil
}

// Confirm sends one receipt for ids (several frames if they are many): the
// application has processed those pushes. The edge ignores ids it does not
// hold unconfirmed on this connection, so a repeat is harmless; an empty
// or over-long id is refused here. Without Options.ManualReceipts the
// client already confirms every push that asks, once taken.
func (c *Conn) Confirm(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	enc := wire.AppendTCP
	if c.ws {
		enc = func(dst []byte, f *Frame) ([]byte, error) { return wire.AppendWSMasked(dst, f, mask()) }
	}
	b, err := appendReceipts(nil, ids, enc)
	if err != nil {
		return err
	}
	return c.write(b)
}

// confirmIDs is how a Conn's confirmer sends.
func (c *Conn) confirmIDs(ids []string) error { return c.Confirm(ids...) }

// taken confirms f, if it asks for a receipt and the client confirms on
// its own.
func (c *Conn) taken(f *Frame) {
	if f.Type == wire.TypePush && f.WantsReceipt && !c.manual {
		c.receipts.add(f.ID)
	}
}

// Confirm sends a receipt for ids on the current connection, as
// [Conn.Confirm] does; between connections it returns ErrDisconnected
// (the edge hands unconfirmed pushes on, and they come again: a repeat of
// a push confirmed here is confirmed again on its own).
func (s *Session) Confirm(ids ...string) error {
	for _, id := range ids {
		s.seen.confirm(id)
	}
	c := s.current()
	if c == nil {
		return ErrDisconnected
	}
	return c.Confirm(ids...)
}

// confirmIDs is how a Session's confirmer sends.
func (s *Session) confirmIDs(ids []string) error { return s.Confirm(ids...) }
