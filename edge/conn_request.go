package edge

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Request is a client's request, as a [Handler] sees it.
type Request struct {
	ID          string // chosen by the client, unique among its requests in flight
	Method      string
	ContentType string
	Payload     []byte
	// Conn is the connection the request came on; Conn.Session() is the
	// authenticated session.
	Conn *Conn
}

// Handler answers a request. It runs on a goroutine of its own; ctx ends
// when the client cancels the request or the connection closes, and the
// handler and its stream must stop then. A nil error with a zero Response
// answers with nothing (the client gets the end of the request). An error,
// or an error yielded by the stream, ends the request: a *ProtocolError
// goes to the client as an error frame with its code, a *TransportError
// closes the connection, and any other error is logged and sent as code
// internal.
type Handler func(ctx context.Context, req *Request) (Response, error)

// Response is what a handler answers: one frame ([Reply]), nothing (the zero
// Response) or a stream ([Stream]).
type Response struct {
	frames iter.Seq2[Frame, error]
}

// Reply answers with one frame.
func Reply(f Frame) Response {
	return Response{frames: func(yield func(Frame, error) bool) { yield(f, nil) }}
}

// Stream answers with the frames seq yields, in order. They go out behind
// pushes, and at most Config.StreamBuffer of them wait in the queue: the
// stream is paused (yield blocks) while the client is behind. yield returns
// false once the request is canceled or the connection closes.
func Stream(seq iter.Seq2[Frame, error]) Response { return Response{frames: seq} }

// request is a request in flight. Its mutable fields are guarded by the
// connection's mutex.
type request struct {
	Request
	ctx      context.Context
	cancel   context.CancelFunc
	handler  Handler
	queued   int         // response frames in the connection's queue
	room     broadcast   // a frame left the queue: wakes the stream waiting for room
	canceled atomic.Bool // by the client: set by the reader, read by the request's goroutine
}

func (r *request) poppedLocked() {
	r.queued--
	r.wakeLocked()
}

func (r *request) wakeLocked() { r.room.wakeLocked() }

// startRequest validates a request frame and starts its handler. Refusals
// are protocol errors: an error frame for the request, the connection stays.
func (c *Conn) startRequest(f *Frame) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	perr := c.admitLocked(f)
	if perr != nil {
		c.mu.Unlock()
		c.protocolError(f.ID, perr)
		return
	}
	ctx, cancel := context.WithCancel(c.srv.baseCtx)
	r := &request{
		Request: Request{ID: f.ID, Method: f.Name, ContentType: f.ContentType, Payload: f.Payload, Conn: c},
		ctx:     ctx, cancel: cancel, handler: c.srv.handler(f.Name),
	}
	if c.reqs == nil {
		c.reqs = make(map[string]*request)
	}
	c.reqs[f.ID] = r
	c.reqWG.Add(1)
	c.mu.Unlock()
	go c.serveRequest(r)
}

func (c *Conn) admitLocked(f *Frame) *ProtocolError {
	switch {
	case !c.takeRequest():
		return &ProtocolError{Code: wire.CodeRateLimited, Message: fmt.Sprintf("more than %v requests a second", c.srv.cfg.RequestRate)}
	case c.srv.handler(f.Name) == nil:
		return &ProtocolError{Code: wire.CodeUnknownMethod, Message: fmt.Sprintf("no handler for method %q", f.Name)}
	case c.reqs[f.ID] != nil:
		return &ProtocolError{Code: wire.CodeDuplicateID, Message: fmt.Sprintf("request %q is already in flight", f.ID)}
	case len(c.reqs) >= c.srv.cfg.MaxRequests:
		return &ProtocolError{Code: wire.CodeTooManyRequests, Message: fmt.Sprintf("at most %d requests at a time", c.srv.cfg.MaxRequests)}
	}
	return nil
}

// cancelRequest is the client's cancel frame.
func (c *Conn) cancelRequest(id string) {
	c.mu.Lock()
	if r := c.reqs[id]; r != nil {
		r.canceled.Store(true)
		r.cancel()
	}
	c.mu.Unlock()
}

func (c *Conn) cancelRequestsLocked() {
	for _, r := range c.reqs {
		r.cancel()
	}
}

// serveRequest runs on the request's goroutine, which the reader goroutine
// waits for before the connection ends.
func (c *Conn) serveRequest(r *request) {
	defer c.reqWG.Done()
	defer c.recoverRequest()
	err := c.runHandler(r)
	c.endRequest(r, err)
}

// errHandlerPanic: the handler panicked. The panic is logged, with its
// stack, where it was contained, so the failed request is not logged again.
var errHandlerPanic = errors.New("handler panic")

func (c *Conn) runHandler(r *request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.panicked(PanicRequest, c.session, p, zap.String("method", r.Method), zap.String("request", r.ID))
			err = fmt.Errorf("%w: %v", errHandlerPanic, p)
		}
	}()
	resp, err := r.handler(r.ctx, &r.Request)
	if err != nil || resp.frames == nil {
		return err
	}
	for f, ferr := range resp.frames {
		if ferr != nil {
			return ferr
		}
		if err := c.enqueueResponse(r, f); err != nil {
			return err
		}
	}
	return nil
}

// enqueueResponse queues one response frame, waiting while the request has
// StreamBuffer frames queued. It fails once the request is canceled or the
// connection is closing.
func (c *Conn) enqueueResponse(r *request, f Frame) error {
	f.Type, f.Priority, f.ID = wire.TypeResponse, push.High, r.ID
	if err := c.srv.checkFrame(&f); err != nil {
		return &ProtocolError{Code: wire.CodeTooLarge, Message: "response " + err.Error()}
	}
	for {
		c.mu.Lock()
		if err := r.ctx.Err(); err != nil || c.state != stateOpen {
			c.mu.Unlock()
			return errors.Join(context.Cause(r.ctx), ErrClosed)
		}
		if r.queued < c.srv.cfg.StreamBuffer {
			r.queued++
			c.out.resp.push(item{e: Envelope{Frame: f}, req: r})
			c.wakeWriterLocked()
			c.mu.Unlock()
			return nil
		}
		room := r.room.waitLocked()
		c.mu.Unlock()
		select {
		case <-room:
		case <-r.ctx.Done():
		}
	}
}

// endRequest sends the request's last frame, forgets it and fires the
// command-end hook: exactly once per started request.
func (c *Conn) endRequest(r *request, err error) {
	last, perr, fatal := c.lastFrame(r, err)
	c.srv.metrics.streams[streamOutcome(r, err, last, fatal)].Inc()
	c.mu.Lock()
	delete(c.reqs, r.ID)
	if last != nil && c.state == stateOpen {
		c.out.resp.push(item{e: Envelope{Frame: *last}, req: r})
		r.queued++
		c.wakeWriterLocked()
	}
	c.mu.Unlock()
	r.cancel()
	if fatal {
		c.abort(wire.CloseProtocol, push.ReasonClosed)
	}
	if h := c.srv.hooks.OnCommandEnd; h != nil {
		h(c, &r.Request, err)
	}
	if perr != nil {
		c.fireProtocolError(perr)
	}
}

// lastFrame is the frame that ends a request: end, or an error frame. None
// when the connection is going away or the handler ended it.
func (c *Conn) lastFrame(r *request, err error) (last *Frame, perr *ProtocolError, fatal bool) {
	var te *TransportError
	switch {
	case err == nil:
		return &Frame{Type: wire.TypeEnd, ID: r.ID}, nil, false
	case errors.As(err, &te):
		return nil, nil, true
	case errors.As(err, &perr):
	case r.canceled.Load():
		perr = &ProtocolError{Code: wire.CodeCanceled, Message: "canceled by the client"}
	case r.ctx.Err() != nil || errors.Is(err, ErrClosed):
		return nil, nil, false // the connection is closing
	default:
		if !errors.Is(err, errHandlerPanic) {
			c.srv.log.Warn("request failed", zap.String("session", c.session),
				zap.String("method", r.Method), zap.String("request", r.ID), zap.Error(err))
		}
		perr = &ProtocolError{Code: wire.CodeInternal, Message: "the request failed; see the server log"}
	}
	return errorFrame(r.ID, perr), perr, false
}

// streamOutcome names how a request ended, for the metrics.
func streamOutcome(r *request, err error, last *Frame, fatal bool) string {
	switch {
	case err == nil:
		return StreamCompleted
	case r.canceled.Load():
		return StreamCanceled
	case last == nil && !fatal:
		return StreamAbandoned
	}
	return StreamFailed
}

func errorFrame(id string, perr *ProtocolError) *Frame {
	return &Frame{Type: wire.TypeError, ID: id, Name: string(perr.Code), Payload: []byte(perr.Message)}
}

// maxLooseErrors bounds error frames for refused requests waiting in the
// queue; a client that keeps sending bad frames without reading is closed.
const maxLooseErrors = 64

// protocolError answers a client's mistake with an error frame (for request
// id, or for the connection when id is empty) and keeps the connection.
func (c *Conn) protocolError(id string, perr *ProtocolError) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	if c.out.looseErrors >= maxLooseErrors {
		c.mu.Unlock()
		c.abort(wire.CloseProtocol, push.ReasonClosed)
		return
	}
	c.out.looseErrors++
	c.out.resp.push(item{e: Envelope{Frame: *errorFrame(id, perr)}})
	c.wakeWriterLocked()
	c.mu.Unlock()
	c.fireProtocolError(perr)
}

func (c *Conn) fireProtocolError(perr *ProtocolError) {
	if h := c.srv.hooks.OnProtocolError; h != nil {
		h(c, perr)
	}
}
