// Package backend serves pushfabric clients' requests from a Go service:
// an edge node forwards a client's request for method to
// req.<prefix>.<method> (docs/requests.md), and the service answers on the
// request's reply subject with one reply or a stream of them.
//
//	svc, err := backend.Serve(nc, "feed", func(ctx context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
//		return func(yield func(backend.Reply, error) bool) {
//			for page := range pages(req.Session) {
//				if !yield(backend.Reply{Payload: page}, nil) {
//					return
//				}
//			}
//		}
//	}, backend.Options{})
//
// Every reply goes out as it is yielded, with Push-Stream: more; the end
// of the stream is a reply with Push-Stream: end and no body. A yielded or
// returned [*Error] ends the request with an error frame of that code; any
// other error with code internal (details go to Options.OnError, not to the
// client).
//
// The package imports nats.go, the NATS contract (protocol) and the
// vocabulary (push); never edge, bus, fx or Prometheus, so a backend
// service links nothing of the edge node (tests/imports_test.go).
package backend

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
)

// Request is a client's request as a backend sees it.
type Request struct {
	Session     string // the client's authenticated session, set by the edge node
	ID          string // the client's request id, unique among the session's requests in flight
	Method      string
	ContentType string
	Payload     []byte
	Msg         *nats.Msg // the request as it arrived, headers and all
}

// Reply is one reply: a response frame for the client.
type Reply struct {
	Payload     []byte
	ContentType string
}

// Error answers a request with an error frame: Code (1–128 characters of
// [A-Za-z0-9_-]) and a Message for people.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Handler answers a request with the replies its sequence yields, in order.
// ctx ends when the service stops. The sequence should stop when yield
// returns false (the connection to NATS closed).
type Handler func(ctx context.Context, req *Request) iter.Seq2[Reply, error]

// One is a sequence of a single reply.
func One(r Reply) iter.Seq2[Reply, error] {
	return func(yield func(Reply, error) bool) { yield(r, nil) }
}

// Fail is a sequence that ends the request with err at once.
func Fail(err error) iter.Seq2[Reply, error] {
	return func(yield func(Reply, error) bool) { yield(Reply{}, err) }
}

// Options configure a service. The zero value serves prefix "push" in
// queue group "pushfabric".
type Options struct {
	Prefix string // the edge nodes' subject prefix; default "push"
	Queue  string // queue group: each request goes to one member; default "pushfabric"
	// OnError hears of errors the client is not told in detail: a handler's
	// error that is not an *Error, a reply that could not be published, a
	// request without a reply subject. Nil: they are dropped.
	OnError func(req *Request, err error)
}

// Service serves one method. Stop it with Stop.
type Service struct {
	sub     *nats.Subscription
	nc      *nats.Conn
	handler Handler
	onError func(*Request, error)
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	stopped bool           // guarded by mu
	wg      sync.WaitGroup // handlers running; Add guarded by mu
}

// Serve subscribes to method's requests and answers each on a goroutine of
// its own with h. When it returns, requests for method reach the service.
func Serve(nc *nats.Conn, method string, h Handler, o Options) (*Service, error) {
	if o.Prefix == "" {
		o.Prefix = protocol.DefaultPrefix
	}
	if o.Queue == "" {
		o.Queue = "pushfabric"
	}
	if o.OnError == nil {
		o.OnError = func(*Request, error) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{nc: nc, handler: h, onError: o.OnError, ctx: ctx, cancel: cancel}
	sub, err := nc.QueueSubscribe(protocol.RequestSubject(o.Prefix, method), o.Queue, func(m *nats.Msg) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopped {
			s.refuse(m)
			return
		}
		s.wg.Go(func() { s.serve(method, m) })
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("serve %q: %w", method, err)
	}
	s.sub = sub
	// Once Serve returns, the server knows the subscription (when
	// connected; otherwise it is made on reconnecting).
	_ = nc.Flush()
	return s, nil
}

// Stop takes no more requests (one that still arrives is answered with
// error unavailable), waits for those being answered until ctx ends, then
// cancels their handlers and waits for them to return.
func (s *Service) Stop(ctx context.Context) error {
	err := s.sub.Unsubscribe()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
	}
	s.cancel()
	return err
}

// refuse answers a request that came too late.
func (s *Service) refuse(m *nats.Msg) {
	if m.Reply != "" {
		_ = s.nc.PublishMsg(errorMsg(m.Reply, &Error{Code: "unavailable", Message: "the service is stopping; try again"}))
	}
}

func errorMsg(subject string, e *Error) *nats.Msg {
	return &nats.Msg{Subject: subject, Header: nats.Header{protocol.HeaderError: []string{e.Code}}, Data: []byte(e.Message)}
}

func (s *Service) serve(method string, m *nats.Msg) {
	req := &Request{
		Session:     m.Header.Get(protocol.HeaderSession),
		ID:          m.Header.Get(protocol.HeaderRequestID),
		Method:      method,
		ContentType: m.Header.Get(protocol.HeaderContentType),
		Payload:     m.Data,
		Msg:         m,
	}
	if m.Reply == "" {
		s.onError(req, errors.New("a request without a reply subject: nobody to answer"))
		return
	}
	var failed error
	for r, err := range s.handler(s.ctx, req) {
		if err != nil {
			failed = err
			break
		}
		if err := s.publishMore(m.Reply, r); err != nil {
			s.onError(req, fmt.Errorf("reply: %w", err))
			return
		}
	}
	end := &nats.Msg{Subject: m.Reply, Header: nats.Header{protocol.HeaderStream: []string{protocol.StreamEnd}}}
	if failed != nil {
		var e *Error
		if !errors.As(failed, &e) {
			s.onError(req, failed)
			e = &Error{Code: "internal", Message: "the request failed"}
		}
		end = errorMsg(m.Reply, e)
	}
	if err := s.nc.PublishMsg(end); err != nil {
		s.onError(req, fmt.Errorf("reply: %w", err))
	}
}

// publishMore sends one reply of a stream: Push-Stream: more.
func (s *Service) publishMore(subject string, r Reply) error {
	h := nats.Header{protocol.HeaderStream: []string{protocol.StreamMore}}
	if r.ContentType != "" {
		h[protocol.HeaderContentType] = []string{r.ContentType}
	}
	return s.nc.PublishMsg(&nats.Msg{Subject: subject, Header: h, Data: r.Payload})
}
