package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Outcomes of forwarded requests, the label values of
// pushfabric_backend_requests_total.
const (
	OutcomeCompleted   = "completed"
	OutcomeError       = "error" // the backend answered Push-Error
	OutcomeNoHandler   = string(wire.CodeNoHandler)
	OutcomeTimeout     = string(wire.CodeTimeout)
	OutcomeTooSlow     = string(wire.CodeTooSlow)
	OutcomeInvalid     = string(wire.CodeInvalidMethod)
	OutcomeUnavailable = string(wire.CodeUnavailable)
	OutcomeCanceled    = "canceled" // the client canceled or left
	OutcomeRefused     = "refused"  // a reply over the frame size limit, or a request over NATS's max payload
)

// Outcomes lists every outcome, for metrics.
var Outcomes = []string{OutcomeCompleted, OutcomeError, OutcomeNoHandler, OutcomeTimeout, OutcomeTooSlow,
	OutcomeInvalid, OutcomeUnavailable, OutcomeCanceled, OutcomeRefused}

// Forwarder carries clients' requests to backend services over NATS: a
// request for method goes to req.<prefix>.<method> with Push-Session (the
// authenticated session) and Push-Request-Id, and every reply comes back
// as a response frame until one arrives without Push-Stream: more. Its
// [Forwarder.Handler] is the edge server's fallback handler.
//
// Replies arrive on one wildcard subscription per node
// (_PUSH_REQ.<prefix>.<node's id>.<request>, see
// protocol.RequestInboxPrefix), so a request costs no subscription. Each request
// buffers at most RequestBuffer replies and RequestBufferBytes bytes that
// its client has not taken yet; past that it takes no more, and its stream
// ends with too_slow after what it holds.
type Forwarder struct {
	conn    *Conn
	nc      *nats.Conn // set by Start, with inbox and sub
	prefix  string
	timeout time.Duration
	maxLen  int
	maxSize int
	metrics *Metrics
	log     *zap.Logger

	inbox string // reply subjects are inbox + request number
	sub   *nats.Subscription

	mu    sync.Mutex
	calls map[string]*call // guarded by mu, by reply subject
	next  uint64           // guarded by mu
}

// NewForwarder builds the forwarder of c's node, counting in m. It starts
// nothing: Start it once c has started, and Stop it after the edge server
// has shut down.
func NewForwarder(c *Conn, m *Metrics, log *zap.Logger) (*Forwarder, error) {
	if c == nil || m == nil {
		return nil, errors.New("bus: a forwarder needs a connection and metrics")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg := c.cfg
	return &Forwarder{
		conn: c, prefix: c.Identity().Prefix, timeout: cfg.RequestTimeout,
		maxLen: cfg.RequestBuffer, maxSize: cfg.RequestBufferBytes, metrics: m, log: log,
		calls: make(map[string]*call),
	}, nil
}

// Start subscribes to the node's reply subjects. The connection must have
// started; call it once, before the edge server serves.
func (f *Forwarder) Start(context.Context) error {
	nc := f.conn.NC
	if nc == nil {
		return errors.New("bus: start the connection before the forwarder")
	}
	inbox := protocol.RequestInboxPrefix(f.prefix) + nuid.Next() + "."
	sub, err := nc.Subscribe(inbox+"*", f.reply)
	if err != nil {
		return fmt.Errorf("subscribe to request replies: %w", err)
	}
	// The callback never blocks, so the client-side limits are not what
	// bounds replies: each request's buffer is.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	f.nc, f.inbox, f.sub = nc, inbox, sub
	return nil
}

// Stop unsubscribes; requests still waiting end with timeout. Stopping a
// forwarder that never started does nothing.
func (f *Forwarder) Stop(context.Context) error {
	if f.sub == nil {
		return nil
	}
	return f.sub.Unsubscribe()
}

// call is one forwarded request waiting for replies.
type call struct {
	mu       sync.Mutex
	replies  []*nats.Msg // guarded by mu
	size     int         // guarded by mu: payload bytes in replies
	last     time.Time   // guarded by mu: when the latest reply arrived
	overflow bool        // guarded by mu
	ready    chan struct{}
}

// reply runs on the subscription's goroutine: it files a reply with its
// request and never blocks.
func (f *Forwarder) reply(m *nats.Msg) {
	f.mu.Lock()
	c := f.calls[m.Subject]
	f.mu.Unlock()
	if c == nil {
		f.metrics.lateReply()
		return
	}
	c.mu.Lock()
	switch {
	case c.overflow:
	case len(c.replies) >= f.maxLen || c.size+len(m.Data) > f.maxSize:
		c.overflow = true // what is buffered still goes out, then too_slow
	default:
		c.replies = append(c.replies, m)
		c.size += len(m.Data)
		c.last = time.Now()
	}
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// next waits for the request's next reply, at most the idle timeout after
// the latest one arrived.
func (c *call) next(ctx context.Context, timeout time.Duration) (*nats.Msg, error) {
	for {
		c.mu.Lock()
		if len(c.replies) > 0 {
			m := c.replies[0]
			c.replies[0] = nil
			c.replies = c.replies[1:]
			c.size -= len(m.Data)
			c.mu.Unlock()
			return m, nil
		}
		if c.overflow {
			c.mu.Unlock()
			return nil, errTooSlow
		}
		wait := time.Until(c.last.Add(timeout))
		c.mu.Unlock()
		if wait <= 0 {
			return nil, &edge.ProtocolError{Code: wire.CodeTimeout, Message: fmt.Sprintf("no reply from the backend for %v", timeout)}
		}
		t := time.NewTimer(wait)
		select {
		case <-c.ready:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		}
		t.Stop()
	}
}

var errTooSlow = &edge.ProtocolError{Code: wire.CodeTooSlow, Message: "the client read replies more slowly than the backend sent them"}

// Handler is the edge handler that forwards requests.
func (f *Forwarder) Handler() edge.Handler { return f.forward }

func (f *Forwarder) forward(ctx context.Context, req *edge.Request) (edge.Response, error) {
	if !push.ValidName(req.Method) {
		f.metrics.request(OutcomeInvalid)
		return edge.Response{}, &edge.ProtocolError{Code: wire.CodeInvalidMethod,
			Message: push.CheckName("method", req.Method).Error()}
	}
	c := &call{ready: make(chan struct{}, 1), last: time.Now()}
	f.mu.Lock()
	f.next++
	reply := f.inbox + strconv.FormatUint(f.next, 36)
	f.calls[reply] = c
	f.mu.Unlock()
	h := nats.Header{
		protocol.HeaderSession:   []string{req.Conn.Session()},
		protocol.HeaderRequestID: []string{req.ID},
	}
	if req.ContentType != "" {
		h[protocol.HeaderContentType] = []string{req.ContentType}
	}
	msg := &nats.Msg{Subject: protocol.RequestSubject(f.prefix, req.Method), Reply: reply, Header: h, Data: req.Payload}
	if err := f.nc.PublishMsg(msg); err != nil {
		f.forget(reply)
		if errors.Is(err, nats.ErrMaxPayload) {
			f.metrics.request(OutcomeRefused)
			return edge.Response{}, &edge.ProtocolError{Code: wire.CodeTooLarge,
				Message: fmt.Sprintf("a request of %d bytes is over the NATS server's limit of %d", len(req.Payload), f.nc.MaxPayload())}
		}
		f.metrics.request(OutcomeUnavailable)
		f.log.Warn("request not forwarded", zap.String("session", req.Conn.Session()),
			zap.String("method", req.Method), zap.Error(err))
		return edge.Response{}, &edge.ProtocolError{Code: wire.CodeUnavailable, Message: "the request could not be forwarded; try again"}
	}
	return edge.Stream(func(yield func(edge.Frame, error) bool) {
		defer f.forget(reply)
		outcome := f.relay(ctx, c, msg.Subject, yield)
		f.metrics.request(outcome)
	}), nil
}

// forget drops a request's reply subject: later replies are discarded.
func (f *Forwarder) forget(reply string) {
	f.mu.Lock()
	delete(f.calls, reply)
	f.mu.Unlock()
}

// relay yields the replies of the request sent to subject as frames until
// the last one, and says how the request ended.
func (f *Forwarder) relay(ctx context.Context, c *call, subject string, yield func(edge.Frame, error) bool) string {
	for {
		m, err := c.next(ctx, f.timeout)
		if err != nil {
			yield(edge.Frame{}, err)
			switch err {
			case errTooSlow:
				return OutcomeTooSlow
			case context.Cause(ctx):
				return OutcomeCanceled
			}
			return OutcomeTimeout
		}
		r := decodeReply(m, subject)
		if r.err != nil {
			yield(edge.Frame{}, r.err)
			return r.outcome
		}
		if r.frame != nil && !yield(*r.frame, nil) {
			if ctx.Err() != nil {
				return OutcomeCanceled
			}
			return OutcomeRefused
		}
		if !r.more {
			return OutcomeCompleted
		}
	}
}

// reply is what a backend's reply means for the client.
type reply struct {
	frame   *edge.Frame         // a response frame to send, if any
	more    bool                // more replies follow
	err     *edge.ProtocolError // the request ends with this error frame
	outcome string              // with err: OutcomeNoHandler or OutcomeError
}

// decodeReply reads a reply to a request forwarded to subject: the NATS
// server's "no responders" status, a Push-Error, or a frame with
// Push-Stream.
func decodeReply(m *nats.Msg, subject string) reply {
	if push.NoResponders(m.Header, m.Data) {
		return reply{err: &edge.ProtocolError{Code: wire.CodeNoHandler, Message: "no backend serves this method: nothing answers on " + subject},
			outcome: OutcomeNoHandler}
	}
	if code := m.Header.Get(protocol.HeaderError); code != "" {
		return reply{err: backendError(code, m.Data), outcome: OutcomeError}
	}
	stream := m.Header.Get(protocol.HeaderStream)
	r := reply{more: stream == protocol.StreamMore}
	if stream != protocol.StreamEnd || len(m.Data) > 0 {
		r.frame = &edge.Frame{Payload: m.Data, ContentType: m.Header.Get(protocol.HeaderContentType)}
	}
	return r
}

// backendError is the client's error frame for a backend's Push-Error
// reply: its code when that is a valid name, else backend_error with the
// code in the message.
func backendError(code string, body []byte) *edge.ProtocolError {
	if push.ValidName(code) {
		return &edge.ProtocolError{Code: wire.ErrorCode(code), Message: string(body)}
	}
	return &edge.ProtocolError{Code: wire.CodeBackendError, Message: fmt.Sprintf("%q: %s", code, body)}
}
