package edge

import (
	"sync"
	"time"
)

// item is one queued frame: a push with what the server knows of it, or a
// response frame (in e.Frame, with req set: popping one gives its request
// room for the next).
type item struct {
	e   Envelope
	req *request
	at  time.Duration // when it was queued, on the server's clock (pushes only)
}

// chunkLen items share one pooled chunk. Small enough that a connection
// with one pending push holds ~2 KB, large enough to amortise the pool.
const chunkLen = 16

type chunk struct {
	items [chunkLen]item
	next  *chunk
}

// chunks is shared by every queue in the process: an empty queue returns
// its chunk, so an idle connection holds no queue memory.
var chunks = sync.Pool{New: func() any { return new(chunk) }}

// fifo is an unbounded FIFO of items built from pooled chunks. The owner
// enforces bounds. Not safe for concurrent use.
type fifo struct {
	head, tail *chunk
	r, w       int // read index in head, write index in tail
	n          int
}

func (q *fifo) len() int { return q.n }

func (q *fifo) push(it item) {
	if q.tail == nil {
		q.head = chunks.Get().(*chunk)
		q.tail, q.r, q.w = q.head, 0, 0
	} else if q.w == chunkLen {
		c := chunks.Get().(*chunk)
		q.tail.next, q.tail, q.w = c, c, 0
	}
	q.tail.items[q.w] = it
	q.w++
	q.n++
}

// peek returns the oldest item; the queue must not be empty.
func (q *fifo) peek() *item { return &q.head.items[q.r] }

// pop removes and returns the oldest item; the queue must not be empty.
func (q *fifo) pop() item {
	it := q.head.items[q.r]
	q.head.items[q.r] = item{} // drop references for the GC
	q.r++
	q.n--
	switch {
	case q.n == 0:
		q.release(q.head)
		q.head, q.tail = nil, nil
	case q.r == chunkLen:
		c := q.head
		q.head, q.r = c.next, 0
		q.release(c)
	}
	return it
}

// drain pops everything, calling fn for each item in order.
func (q *fifo) drain(fn func(item)) {
	for q.n > 0 {
		fn(q.pop())
	}
}

func (q *fifo) release(c *chunk) {
	c.next = nil
	chunks.Put(c)
}
