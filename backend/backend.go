// Package backend serves pushfabric clients' requests from a Go service:
// an edge node forwards a client's request for method to
// req.<prefix>.<method> (docs/requests.md), and the service answers on the
// request's reply subject with one reply or a stream of them.
//
//	svc, err := backend.New(nc, "feed", func(ctx context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
//		return func(yield func(backend.Reply, error) bool) {
//			for page := range pages(req.Session) {
//				if !yield(backend.Reply{Payload: page}, nil) {
//					return
//				}
//			}
//		}
//	}, backend.Options{})
//	err = svc.Start(ctx)
//	defer svc.Stop(ctx)
//
// New only checks its arguments and builds the service. Start subscribes
// to the method's requests (in a queue group, so each request goes to one
// member) and from then on answers each on a goroutine of its own. Stop
// takes no more requests, waits for those being answered, cancels their
// handlers when its context ends, and returns once every handler has
// returned; it never closes the NATS connection, which stays the caller's.
//
// Every reply goes out as it is yielded, with Push-Stream: more; the end
// of the stream is a reply with Push-Stream: end and no body. A yielded or
// returned [*Error] ends the request with an error frame of that code; any
// other error with code internal (details go to Options.OnError, not to the
// client).
//
// Beside serving requests, the package hears the edge nodes' session
// events ([SessionEvents]), asks which members of a group are online, on
// which nodes ([GroupPresence]), and joins a connected session to groups
// and takes it out of them ([ChangeGroups]).
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
	"github.com/pushfabric/pushfabric/push"
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

// Service serves one method: build it with New, Start it, Stop it.
type Service struct {
	sub     *nats.Subscription // set by Start
	nc      *nats.Conn
	subject string
	queue   string
	method  string
	handler Handler
	onError func(*Request, error)
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	stopped bool           // guarded by mu
	wg      sync.WaitGroup // handlers running; Add guarded by mu
}

// New checks its arguments and builds the service of method on nc, whose
// requests h answers; it starts nothing, and nc need not be connected yet.
func New(nc *nats.Conn, method string, h Handler, o Options) (*Service, error) {
	if nc == nil || h == nil {
		return nil, errors.New("backend: a service needs a NATS connection and a handler")
	}
	if err := push.CheckName("method", method); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	var err error
	if o.Prefix, err = prefixOrDefault(o.Prefix); err != nil {
		return nil, err
	}
	if o.Queue == "" {
		o.Queue = "pushfabric"
	}
	if o.OnError == nil {
		o.OnError = func(*Request, error) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{nc: nc, subject: protocol.RequestSubject(o.Prefix, method), queue: o.Queue, method: method,
		handler: h, onError: o.OnError, ctx: ctx, cancel: cancel}, nil
}

// Start subscribes to the method's requests and answers each on a
// goroutine of its own. When it returns, requests for the method reach the
// service (when connected; otherwise once nc has connected). Call it once.
func (s *Service) Start(context.Context) error {
	if s.sub != nil {
		return errors.New("backend: started already")
	}
	sub, err := s.nc.QueueSubscribe(s.subject, s.queue, s.take)
	if err != nil {
		return fmt.Errorf("serve %q: %w", s.method, err)
	}
	s.sub = sub
	_ = s.nc.Flush()
	return nil
}

// take runs on the subscription's goroutine for each request.
func (s *Service) take(m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.refuse(m)
		return
	}
	s.wg.Go(func() { s.serve(s.method, m) })
}

// Stop takes no more requests (one that still arrives is answered with
// error unavailable), waits for those being answered until ctx ends, then
// cancels their handlers and waits for them to return. A service never
// started stops at once.
func (s *Service) Stop(ctx context.Context) error {
	var err error
	if s.sub != nil {
		err = s.sub.Unsubscribe()
	}
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

// prefixOrDefault is the edge nodes' subject prefix an option names:
// protocol.DefaultPrefix when empty, refused unless one subject token.
func prefixOrDefault(prefix string) (string, error) {
	if prefix == "" {
		return protocol.DefaultPrefix, nil
	}
	if !push.ValidToken(prefix) {
		return prefix, fmt.Errorf("backend: prefix %q must be one subject token", prefix)
	}
	return prefix, nil
}
