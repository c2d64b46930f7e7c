package tests

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// requestNode is one NATS server, one edge node on it (cfg changed by
// mod) and a NATS connection for backends.
func requestNode(t *testing.T, mod func(*app.Config)) (*server.Server, *edgeNode, *nats.Conn) {
	t.Helper()
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "edge1")
	if mod != nil {
		mod(&cfg)
	}
	n := startEdge(t, cfg)
	return s, n, natstest.Connect(t, s)
}

// serve runs a backend.Service for method, stopped at cleanup.
func serve(t *testing.T, nc *nats.Conn, method string, h backend.Handler) {
	t.Helper()
	svc, err := backend.New(nc, method, h, backend.Options{OnError: func(_ *backend.Request, err error) {
		t.Logf("backend %s: %v", method, err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(timeout(t)); err != nil {
			t.Errorf("stop %s: %v", method, err)
		}
	})
}

// respond answers method's requests with answer, as any NATS client can.
func respond(t *testing.T, nc *nats.Conn, method string, answer func(*nats.Msg)) {
	t.Helper()
	sub, err := nc.Subscribe(protocol.RequestSubject(protocol.DefaultPrefix, method), answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// collect sends a request and gathers its response payloads and the error
// that ended it (nil: it completed).
func collect(t *testing.T, c *client.Conn, method string, payload []byte) ([]string, error) {
	t.Helper()
	var got []string
	for f, err := range c.Request(timeout(t), method, payload) {
		if err != nil {
			return got, err
		}
		got = append(got, string(f.Payload))
	}
	return got, nil
}

// wantCode checks that err is an error frame with code.
func wantCode(t *testing.T, err error, code wire.ErrorCode) *client.RequestError {
	t.Helper()
	var re *client.RequestError
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("request ended with %v, want error frame %s", err, code)
	}
	return re
}

// waitOutcomes waits until the node's forwarded-request counters (by
// outcome) and its response-stream counters (one per command end) are
// exactly as given; outcomes not named must be 0.
func waitOutcomes(t *testing.T, n *edgeNode, want map[string]float64) {
	t.Helper()
	var last string
	waitFor(t, fmt.Sprintf("request outcomes %v", want), func() bool {
		_, mfs := scrape(t, n)
		var b strings.Builder
		ok, total, ended := true, 0.0, 0.0
		for _, o := range bus.Outcomes {
			v := value(t, mfs, "pushfabric_backend_requests_total", "outcome="+o)
			fmt.Fprintf(&b, "%s=%v ", o, v)
			ok = ok && v == want[o]
			total += v
		}
		for _, o := range []string{edge.StreamCompleted, edge.StreamFailed, edge.StreamCanceled, edge.StreamAbandoned} {
			ended += value(t, mfs, "pushfabric_response_streams_total", "outcome="+o)
		}
		fmt.Fprintf(&b, "command ends=%v", ended)
		last = b.String()
		return ok && ended == total
	})
	t.Logf("outcomes: %s", last)
}

// numbered is a backend stream of n replies "0" … "n-1".
func numbered(n int) iter.Seq2[backend.Reply, error] {
	return func(yield func(backend.Reply, error) bool) {
		for i := range n {
			if !yield(backend.Reply{Payload: []byte(strconv.Itoa(i))}, nil) {
				return
			}
		}
	}
}

func TestRequestStreamsAThousandRepliesInOrder(t *testing.T) {
	_, n, nc := requestNode(t, nil)
	var seen sync.Map // request id → session, as the backend saw them
	serve(t, nc, "feed", func(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		seen.Store(req.ID, req.Session)
		count, err := strconv.Atoi(string(req.Payload))
		if err != nil {
			return backend.Fail(&backend.Error{Code: "bad_count", Message: err.Error()})
		}
		return numbered(count)
	})
	for _, addr := range []string{n.tcp(), n.ws()} {
		c := dial(t, addr, "alice", client.Options{})
		got, err := collect(t, c, "feed", []byte("1000"))
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if len(got) != 1000 {
			t.Fatalf("%s: %d replies, want 1000", addr, len(got))
		}
		for i, p := range got {
			if p != strconv.Itoa(i) {
				t.Fatalf("%s: reply %d is %q", addr, i, p)
			}
		}
		// An empty stream is a response with no frames.
		if got, err := collect(t, c, "feed", []byte("0")); err != nil || len(got) != 0 {
			t.Fatalf("empty stream: %q, %v", got, err)
		}
	}
	seen.Range(func(id, session any) bool {
		if session != "alice" {
			t.Errorf("request %v came as session %v", id, session)
		}
		return true
	})
	waitOutcomes(t, n, map[string]float64{bus.OutcomeCompleted: 4})
}

func TestRequestAnsweredByAPlainReply(t *testing.T) {
	_, n, nc := requestNode(t, nil)
	// What `nats reply 'req.push.echo' …` does: one reply, no headers.
	respond(t, nc, "echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("echo: "), m.Data...)) })
	c := dial(t, n.tcp(), "alice", client.Options{})
	got, err := collect(t, c, "echo", []byte("hi"))
	if err != nil || len(got) != 1 || got[0] != "echo: hi" {
		t.Fatalf("got %q, %v; want one frame \"echo: hi\"", got, err)
	}
	waitOutcomes(t, n, map[string]float64{bus.OutcomeCompleted: 1})
}

func TestRequestErrors(t *testing.T) {
	_, n, nc := requestNode(t, func(c *app.Config) {
		c.Bus.RequestTimeout = 300 * time.Millisecond
		c.Edge.MaxFrameSize = 64 << 10
	})
	serve(t, nc, "huge", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.One(backend.Reply{Payload: make([]byte, 100<<10)})
	})
	serve(t, nc, "fails", func(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			if yield(backend.Reply{Payload: []byte("part")}, nil) {
				yield(backend.Reply{}, &backend.Error{Code: "not_found", Message: "no feed " + string(req.Payload)})
			}
		}
	})
	serve(t, nc, "crashes", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.Fail(errors.New("database on fire"))
	})
	// A backend that takes requests and never answers, and one that sends
	// one reply of a stream and then goes quiet.
	respond(t, nc, "silent", func(*nats.Msg) {})
	respond(t, nc, "stalls", func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{protocol.HeaderStream: []string{protocol.StreamMore}}, Data: []byte("first")})
	})
	// A Push-Error code that is not a valid name.
	respond(t, nc, "garbled", func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{protocol.HeaderError: []string{"bad code!"}}, Data: []byte("oops")})
	})
	c := dial(t, n.tcp(), "alice", client.Options{})

	got, err := collect(t, c, "fails", []byte("x"))
	if re := wantCode(t, err, "not_found"); re.Message != "no feed x" || len(got) != 1 {
		t.Fatalf("fails: %q then %v", got, re)
	}
	_, err = collect(t, c, "crashes", nil)
	if re := wantCode(t, err, "internal"); strings.Contains(re.Message, "fire") {
		t.Fatalf("the backend's error text reached the client: %v", re)
	}
	_, err = collect(t, c, "nobody-serves-this", nil)
	wantCode(t, err, wire.CodeNoHandler)
	_, err = collect(t, c, "silent", nil)
	wantCode(t, err, wire.CodeTimeout)
	got, err = collect(t, c, "stalls", nil)
	if wantCode(t, err, wire.CodeTimeout); len(got) != 1 || got[0] != "first" {
		t.Fatalf("stalls: %q before the timeout", got)
	}
	_, err = collect(t, c, "garbled", nil)
	if re := wantCode(t, err, wire.CodeBackendError); !strings.Contains(re.Message, "bad code!") {
		t.Fatalf("garbled: %v", re)
	}
	_, err = collect(t, c, "huge", nil)
	wantCode(t, err, wire.CodeTooLarge)
	waitOutcomes(t, n, map[string]float64{bus.OutcomeError: 3, bus.OutcomeNoHandler: 1, bus.OutcomeTimeout: 2, bus.OutcomeRefused: 1})

	// The connection is fine after all that.
	serve(t, nc, "ok", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.One(backend.Reply{Payload: []byte("fine")})
	})
	if got, err := collect(t, c, "ok", nil); err != nil || len(got) != 1 {
		t.Fatalf("after the errors: %q, %v", got, err)
	}
}

// endless is a backend stream that sends a reply at once and then one
// every time the test lets it (tick), until the test stops it; it counts
// what it sent.
type endless struct {
	tick chan struct{}
	sent atomic.Int64
}

func (e *endless) handler(ctx context.Context, _ *backend.Request) iter.Seq2[backend.Reply, error] {
	return func(yield func(backend.Reply, error) bool) {
		for {
			if !yield(backend.Reply{Payload: []byte("tick")}, nil) {
				return
			}
			e.sent.Add(1)
			select {
			case <-ctx.Done():
				return
			case _, ok := <-e.tick:
				if !ok {
					return
				}
			}
		}
	}
}

func TestRequestEndsWhenTheClientCancelsOrLeaves(t *testing.T) {
	_, n, nc := requestNode(t, nil)
	e := &endless{tick: make(chan struct{})}
	serve(t, nc, "ticks", e.handler)
	defer close(e.tick)

	// The client stops reading after three frames: the request is canceled.
	c := dial(t, n.tcp(), "alice", client.Options{})
	got := 0
	for _, err := range c.Request(timeout(t), "ticks", nil) {
		if err != nil {
			t.Fatal(err)
		}
		if got++; got == 3 {
			break
		}
		e.tick <- struct{}{}
	}
	waitOutcomes(t, n, map[string]float64{bus.OutcomeCanceled: 1})

	// The client disconnects mid-stream.
	c2 := dial(t, n.tcp(), "bob", client.Options{})
	frames := c2.Request(timeout(t), "ticks", nil)
	next, stop := iter.Pull2(frames)
	if _, err, ok := next(); !ok || err != nil {
		t.Fatalf("first frame: %v", err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	stop()
	waitOutcomes(t, n, map[string]float64{bus.OutcomeCanceled: 2})
	// What the backend still sends is counted and dropped.
	before := e.sent.Load()
	e.tick <- struct{}{}
	waitFor(t, "the late reply counted", func() bool {
		_, mfs := scrape(t, n)
		return e.sent.Load() > before && value(t, mfs, "pushfabric_backend_replies_discarded_total") >= 1
	})
}

func TestRequestSlowClientGetsTooSlow(t *testing.T) {
	s, n, nc := requestNode(t, func(c *app.Config) {
		c.Bus.RequestBuffer = 100
		c.Edge.WriteTimeout = time.Minute // the client is stalled on purpose
	})
	const replies = 20_000
	sent := make(chan struct{})
	serve(t, nc, "flood", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			defer close(sent)
			payload := make([]byte, 1024)
			for range replies {
				if !yield(backend.Reply{Payload: payload}, nil) {
					return
				}
			}
		}
	})
	c := dial(t, n.tcp(), "alice", client.Options{})
	next, stop := iter.Pull2(c.Request(timeout(t), "flood", nil))
	defer stop()
	if _, err, _ := next(); err != nil {
		t.Fatal(err)
	}
	// The client stops reading; the backend keeps sending.
	<-sent
	waitOutcomes(t, n, map[string]float64{bus.OutcomeTooSlow: 1})
	got := 1
	var end error
	for {
		_, err, ok := next()
		if !ok {
			break
		}
		if err != nil {
			end = err
			break
		}
		got++
	}
	wantCode(t, end, wire.CodeTooSlow)
	if got >= replies {
		t.Fatalf("%d replies before too_slow", got)
	}
	t.Logf("%d of %d replies reached the client before too_slow", got, replies)

	// Pushes and other requests are untouched.
	if err := nc.PublishMsg(pushMsg("alice", push.High.String(), "after", "still here")); err != nil {
		t.Fatal(err)
	}
	if f := recv(t, c); f.ID != "after" {
		t.Fatalf("push after too_slow: %+v", f)
	}
	serve(t, nc, "ok", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.One(backend.Reply{Payload: []byte("fine")})
	})
	if got, err := collect(t, c, "ok", nil); err != nil || len(got) != 1 {
		t.Fatalf("next request: %q, %v", got, err)
	}
	if dl := deadLetters(t, s); len(dl) != 0 {
		t.Fatalf("dead letters: %+v", dl)
	}
}

func TestRequestCannotActAsAnotherSession(t *testing.T) {
	_, n, nc := requestNode(t, nil)
	// Everything the edge publishes for requests, whatever the method.
	all, err := nc.SubscribeSync("req.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	serve(t, nc, "whoami", func(_ context.Context, req *backend.Request) iter.Seq2[backend.Reply, error] {
		return backend.One(backend.Reply{Payload: []byte(req.Session)})
	})
	c := dial(t, n.tcp(), "alice", client.Options{})
	for _, method := range []string{"a.b", "*", ">", "x y", "", "feed.>", strings.Repeat("m", 129)} {
		_, err := collect(t, c, method, nil)
		wantCode(t, err, wire.CodeInvalidMethod)
	}
	// The request id, the payload and the content type are the client's;
	// none of them can name another session.
	got, err := collect(t, c, "whoami", []byte("Push-Session: bob\r\n"))
	if err != nil || len(got) != 1 || got[0] != "alice" {
		t.Fatalf("whoami: %q, %v", got, err)
	}
	m, err := all.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "req.push.whoami" || m.Header.Get(protocol.HeaderSession) != "alice" ||
		len(m.Header.Values(protocol.HeaderSession)) != 1 || m.Header.Get(protocol.HeaderRequestID) == "" {
		t.Fatalf("forwarded %s with headers %v", m.Subject, m.Header)
	}
	if m, err := all.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("also forwarded %s", m.Subject)
	}
	waitOutcomes(t, n, map[string]float64{bus.OutcomeInvalid: 7, bus.OutcomeCompleted: 1})
}

func TestPushesOvertakeAResponseStream(t *testing.T) {
	_, n, nc := requestNode(t, func(c *app.Config) {
		c.Bus.RequestBufferBytes = 256 << 20
		c.Bus.RequestBuffer = 10_000
	})
	const replies, size = 2_000, 20 << 10
	sent := make(chan struct{})
	serve(t, nc, "export", func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			defer close(sent)
			payload := make([]byte, size)
			for range replies {
				if !yield(backend.Reply{Payload: payload}, nil) {
					return
				}
			}
		}
	})
	var read atomic.Int64 // response frames the test has taken
	pushAt := make(chan int64, 1)
	c := dial(t, n.tcp(), "alice", client.Options{OnPush: func(client.Frame) { pushAt <- read.Load() }})
	gate := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for _, err := range c.Request(timeout(t), "export", nil) {
			if err != nil {
				done <- err
				return
			}
			if read.Add(1) == 1 {
				<-gate // stalled: the stream backs up at the node
			}
		}
		done <- nil
	}()
	<-sent
	p := newProducer(t, nc, "p")
	ack, err := p.Push(timeout(t), "alice", push.High, []byte("urgent"))
	if err != nil || ack.Status != protocol.StatusEnqueued {
		t.Fatalf("push: %+v, %v", ack, err)
	}
	close(gate)
	at := <-pushAt
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("the push arrived after %d of %d response frames", at, replies)
	if at >= replies/2 {
		t.Fatalf("the push waited behind %d of %d response frames", at, replies)
	}
}

func TestRequestLimitPerSession(t *testing.T) {
	_, n, nc := requestNode(t, func(c *app.Config) { c.Edge.MaxRequests = 2 })
	e := &endless{tick: make(chan struct{})}
	serve(t, nc, "ticks", e.handler)
	defer close(e.tick)
	c := dial(t, n.tcp(), "alice", client.Options{})
	for range 2 { // two streams open, each has sent its first reply
		next, stop := iter.Pull2(c.Request(timeout(t), "ticks", nil))
		defer stop()
		if _, err, _ := next(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := collect(t, c, "ticks", nil)
	wantCode(t, err, wire.CodeTooManyRequests)
	// Another session has its own allowance.
	other := dial(t, n.tcp(), "bob", client.Options{})
	next, stop := iter.Pull2(other.Request(timeout(t), "ticks", nil))
	defer stop()
	if _, err, _ := next(); err != nil {
		t.Fatal(err)
	}
}

func TestRequestOverTheNATSPayloadLimit(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.MaxPayload = 64 << 10
	s := natstest.StartWith(t, opts)
	n := startEdge(t, edgeConfig(t, s, "edge1"))
	c := dial(t, n.tcp(), "alice", client.Options{})
	_, err := collect(t, c, "big", make([]byte, 100<<10))
	if re := wantCode(t, err, wire.CodeTooLarge); !strings.Contains(re.Message, "65536") {
		t.Fatalf("too_large: %v", re)
	}
	waitOutcomes(t, n, map[string]float64{bus.OutcomeRefused: 1})
}
