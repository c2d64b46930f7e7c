package edge

import (
	"time"

	"github.com/pushfabric/pushfabric/push"
)

// source is a queue the writer can take the next frame from.
type source int8

const (
	fromNone source = iota
	fromHigh
	fromLow
	fromResp
)

// outbox holds what a connection has to write: control frames, then the
// two push queues, then response frames. The connection guards it with its
// mutex; the fairness state is advanced only by the write side's owner.
type outbox struct {
	high, low fifo
	resp      fifo
	bytes     [2]int // queued payload bytes per priority
	// Control frames, written before anything else.
	welcome   bool
	closeSent bool   // the close frame is queued or written
	closing   bool   // a close frame is due
	goodbye   bool   // the transport's closing bytes and half-close are done
	ping      bool   // a keepalive ping is due
	pong      []byte // an answer to a client ping is due (payload), or nil
	// Loose error frames (requests refused before they started) queued in
	// resp; bounded so a client cannot grow the queue without reading.
	looseErrors int
	// Fairness: the current run of high frames taken in a row.
	highRun  int
	runStart time.Time
}

// next chooses the queue the writer takes from: high before low, except that
// a waiting low frame goes first once the run of highs reached
// MaxHighBeforeLow frames or lasted FairnessSlice; responses come last.
// now is consulted only when a time slice is configured.
func (o *outbox) next(cfg *Config, now *lazyNow) source {
	h, l := o.high.n > 0, o.low.n > 0
	switch {
	case h && !(l && o.fairnessDue(cfg, now)):
		return fromHigh
	case l:
		return fromLow
	case o.resp.n > 0:
		return fromResp
	}
	return fromNone
}

func (o *outbox) fairnessDue(cfg *Config, now *lazyNow) bool {
	if o.highRun == 0 {
		return false
	}
	if cfg.MaxHighBeforeLow > 0 && o.highRun >= cfg.MaxHighBeforeLow {
		return true
	}
	return cfg.FairnessSlice > 0 && now.get().Sub(o.runStart) >= cfg.FairnessSlice
}

// take pops the head of src and advances the fairness state.
func (o *outbox) take(src source, cfg *Config, now *lazyNow) item {
	switch src {
	case fromHigh:
		if o.highRun == 0 && cfg.FairnessSlice > 0 {
			o.runStart = now.get()
		}
		o.highRun++
		return o.popPush(&o.high, push.High)
	case fromLow:
		o.highRun = 0
		return o.popPush(&o.low, push.Low)
	default:
		o.highRun = 0
		it := o.resp.pop()
		if it.req == nil {
			o.looseErrors--
		}
		return it
	}
}

func (o *outbox) popPush(q *fifo, p push.Priority) item {
	it := q.pop()
	o.bytes[p] -= len(it.e.Frame.Payload)
	return it
}

// queue returns the push queue for p.
func (o *outbox) queue(p push.Priority) *fifo {
	if p == push.Low {
		return &o.low
	}
	return &o.high
}

// hasControl reports whether a control frame is due.
func (o *outbox) hasControl() bool {
	return o.welcome || o.closing || o.ping || o.pong != nil
}

// idle ends the current run: nothing was ready, so no low frame waited.
func (o *outbox) idle() { o.highRun = 0 }

// lazyNow reads the clock at most once, and only if asked: a batch without
// expiring frames, rate limit or time slice never reads it.
type lazyNow struct {
	t   time.Time
	set bool
}

func (n *lazyNow) get() time.Time {
	if !n.set {
		n.t, n.set = time.Now(), true
	}
	return n.t
}
