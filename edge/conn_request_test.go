package edge_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// ends counts command-end hook calls per request.
type ends struct {
	mu   sync.Mutex
	n    map[string]int
	errs map[string]error
	done chan string
}

func newEnds() *ends {
	return &ends{n: map[string]int{}, errs: map[string]error{}, done: make(chan string, 1024)}
}

func (e *ends) hook(c *edge.Conn, req *edge.Request, err error) {
	e.mu.Lock()
	key := c.Session() + "/" + req.Method
	e.n[key]++
	e.errs[key] = err
	e.mu.Unlock()
	e.done <- key
}

// wait waits for the command end of session/method and checks it is the
// only one.
func (e *ends) wait(t *testing.T, key string) error {
	t.Helper()
	return e.waitN(t, key, 1)
}

// waitN waits for n command ends of session/method and checks there are no
// more.
func (e *ends) waitN(t *testing.T, key string, n int) error {
	t.Helper()
	timeout := time.After(testTimeout)
	for seen := 0; seen < n; {
		select {
		case got := <-e.done:
			if got == key {
				seen++
			}
		case <-timeout:
			t.Fatalf("saw %d command ends for %s; want %d", seen, key, n)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n[key] != n {
		t.Fatalf("command end fired %d times for %s; want %d", e.n[key], key, n)
	}
	return e.errs[key]
}

func count(n int) iter.Seq2[edge.Frame, error] {
	return func(yield func(edge.Frame, error) bool) {
		for i := range n {
			if !yield(edge.Frame{Payload: []byte(fmt.Sprint(i))}, nil) {
				return
			}
		}
	}
}

func requestNode(t *testing.T, cfg edge.Config, e *ends) *node {
	started := make(chan struct{}, 16)
	handlers := map[string]edge.Handler{
		"one": func(ctx context.Context, r *edge.Request) (edge.Response, error) {
			return edge.Reply(edge.Frame{ContentType: "text/plain", Payload: append([]byte("echo:"), r.Payload...)}), nil
		},
		"none": func(context.Context, *edge.Request) (edge.Response, error) { return edge.Response{}, nil },
		"count": func(ctx context.Context, r *edge.Request) (edge.Response, error) {
			var n int
			fmt.Sscan(string(r.Payload), &n)
			return edge.Stream(count(n)), nil
		},
		"refuse": func(context.Context, *edge.Request) (edge.Response, error) {
			return edge.Response{}, &edge.ProtocolError{Code: "not_allowed", Message: "no"}
		},
		"midway": func(context.Context, *edge.Request) (edge.Response, error) {
			return edge.Stream(func(yield func(edge.Frame, error) bool) {
				if yield(edge.Frame{Payload: []byte("first")}, nil) {
					yield(edge.Frame{}, &edge.ProtocolError{Code: "broken", Message: "stream failed"})
				}
			}), nil
		},
		"fail": func(context.Context, *edge.Request) (edge.Response, error) {
			return edge.Response{}, errors.New("db down")
		},
		"kill": func(context.Context, *edge.Request) (edge.Response, error) {
			return edge.Response{}, &edge.TransportError{Op: "session", Err: errors.New("revoked")}
		},
		"panic": func(context.Context, *edge.Request) (edge.Response, error) { panic("boom") },
		"forever": func(ctx context.Context, r *edge.Request) (edge.Response, error) {
			return edge.Stream(func(yield func(edge.Frame, error) bool) {
				started <- struct{}{}
				for i := 0; ; i++ {
					if !yield(edge.Frame{Payload: []byte(fmt.Sprint(i))}, nil) {
						return
					}
				}
			}), nil
		},
		"block": func(ctx context.Context, r *edge.Request) (edge.Response, error) {
			started <- struct{}{}
			<-ctx.Done()
			return edge.Response{}, ctx.Err()
		},
	}
	n := startNode(t, cfg, edge.Options{Handlers: handlers, Hooks: edge.Hooks{OnCommandEnd: e.hook}})
	n.started = started
	return n
}

func collect(t *testing.T, seq iter.Seq2[client.Frame, error]) ([]string, error) {
	t.Helper()
	var out []string
	for f, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, string(f.Payload))
	}
	return out, nil
}

func TestRequests(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	for _, addr := range []string{n.tcp, n.ws} {
		c := dial(t, addr, "r-"+addr[:2], client.Options{})
		ctx := context.Background()
		key := func(m string) string { return c.Session() + "/" + m }

		got, err := collect(t, c.Request(ctx, "one", []byte("hi")))
		if err != nil || len(got) != 1 || got[0] != "echo:hi" {
			t.Fatalf("one: %q, %v; want one frame echo:hi", got, err)
		}
		if err := e.wait(t, key("one")); err != nil {
			t.Fatalf("command end error %v; want nil", err)
		}

		if got, err := collect(t, c.Request(ctx, "none", nil)); err != nil || len(got) != 0 {
			t.Fatalf("none: %q, %v; want no frames", got, err)
		}
		e.wait(t, key("none"))

		got, err = collect(t, c.Request(ctx, "count", []byte("1000")))
		if err != nil || len(got) != 1000 {
			t.Fatalf("count: %d frames, %v; want 1000", len(got), err)
		}
		for i, p := range got {
			if p != fmt.Sprint(i) {
				t.Fatalf("frame %d is %s: out of order", i, p)
			}
		}
		e.wait(t, key("count"))

		for method, code := range map[string]wire.ErrorCode{"refuse": "not_allowed", "fail": wire.CodeInternal, "panic": wire.CodeInternal, "nope": wire.CodeUnknownMethod} {
			_, err := collect(t, c.Request(ctx, method, nil))
			var re *client.RequestError
			if !errors.As(err, &re) || re.Code != code {
				t.Fatalf("%s: error %v; want code %s", method, err, code)
			}
			if method != "nope" {
				e.wait(t, key(method))
			}
		}

		got, err = collect(t, c.Request(ctx, "midway", nil))
		var re *client.RequestError
		if len(got) != 1 || !errors.As(err, &re) || re.Code != "broken" {
			t.Fatalf("midway: %q, %v; want one frame then error broken", got, err)
		}
		e.wait(t, key("midway"))

		// The connection is still usable after all those errors.
		if got, err := collect(t, c.Request(ctx, "one", []byte("again"))); err != nil || got[0] != "echo:again" {
			t.Fatalf("after errors: %q, %v", got, err)
		}
	}
}

// The client stops reading a stream: it is canceled, and command end fires.
func TestRequestCanceledByClient(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	c := dial(t, n.tcp, "cancel", client.Options{})
	i := 0
	for _, err := range c.Request(context.Background(), "forever", nil) {
		if err != nil {
			t.Fatal(err)
		}
		if i++; i == 100 {
			break
		}
	}
	if err := e.wait(t, "cancel/forever"); err == nil {
		t.Fatal("canceled stream ended without error")
	}
}

// Client disconnects mid-stream: the stream is abandoned and command end
// fires exactly once.
func TestRequestAbandonedByDisconnect(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	for _, method := range []string{"forever", "block"} {
		c := dial(t, n.tcp, "gone-"+method, client.Options{})
		go func() {
			for range c.Request(context.Background(), method, nil) {
			}
		}()
		<-n.started
		c.Close()
		if err := e.wait(t, "gone-"+method+"/"+method); err == nil {
			t.Fatalf("%s: abandoned request ended without error", method)
		}
	}
}

// Requests over the limit, and duplicate ids, are refused with error
// frames; the connection stays.
func TestRequestLimits(t *testing.T) {
	e := newEnds()
	cfg := edge.DefaultConfig()
	cfg.MaxRequests = 2
	n := requestNode(t, cfg, e)
	c := dial(t, n.tcp, "limits", client.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range c.Request(ctx, "block", nil) {
			}
		})
		<-n.started
	}
	_, err := collect(t, c.Request(context.Background(), "one", nil))
	var re *client.RequestError
	if !errors.As(err, &re) || re.Code != wire.CodeTooManyRequests {
		t.Fatalf("third request: %v; want too_many_requests", err)
	}
	cancel()
	wg.Wait()
	e.waitN(t, "limits/block", 2)
	if got, err := collect(t, c.Request(context.Background(), "one", []byte("x"))); err != nil || got[0] != "echo:x" {
		t.Fatalf("after the limit cleared: %q, %v", got, err)
	}
}

// Response frames go out behind pushes: pushes queued while a long stream
// runs keep their priority.
func TestPushesOvertakeResponses(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	c := dial(t, n.tcp, "mixed", client.Options{})
	h := n.handle(t, "mixed")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamed := make(chan int)
	go func() {
		k := 0
		for _, err := range c.Request(ctx, "forever", nil) {
			if err != nil {
				break
			}
			k++
		}
		streamed <- k
	}()
	<-n.started
	for i := range 200 {
		if err := h.Push(context.Background(), push.High, pushOf(fmt.Sprint(i), "")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		if f := recv(t, c); f.ID != fmt.Sprint(i) {
			t.Fatalf("push %d arrived as %s", i, f.ID)
		}
	}
	cancel()
	if k := <-streamed; k == 0 {
		t.Fatal("the stream made no progress")
	}
	e.wait(t, "mixed/forever")
}

// Client-side protocol mistakes get error frames and the connection stays.
func TestClientProtocolErrors(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	c := dial(t, n.tcp, "proto", client.Options{})
	raw := rawTCP(t, n, "proto-raw")
	raw.send(t, wire.Frame{Type: wire.TypePush, ID: "p"})  // wrong direction
	raw.sendBytes(t, []byte{0, 0, 0, 6, 9, 9, 9, 9, 9, 9}) // valid length, bad frame
	raw.send(t, wire.Frame{Type: wire.TypeRequest, ID: "a", Name: "block"})
	<-n.started
	raw.send(t, wire.Frame{Type: wire.TypeRequest, ID: "a", Name: "block"}) // duplicate id
	for _, code := range []wire.ErrorCode{wire.CodeUnexpectedFrame, wire.CodeMalformed, wire.CodeDuplicateID} {
		f := raw.next(t)
		if f.Type != wire.TypeError || f.Name != string(code) {
			t.Fatalf("got %v %q; want error %s", f.Type, f.Name, code)
		}
	}
	raw.send(t, wire.Frame{Type: wire.TypeCancel, ID: "a"})
	if f := raw.next(t); f.Type != wire.TypeError || f.Name != string(wire.CodeCanceled) || f.ID != "a" {
		t.Fatalf("after cancel: %v %q %q; want error canceled for a", f.Type, f.Name, f.ID)
	}
	if got, err := collect(t, c.Request(context.Background(), "one", []byte("ok"))); err != nil || got[0] != "echo:ok" {
		t.Fatalf("other connection: %q %v", got, err)
	}
}

// A handler's TransportError ends the connection, after command end.
func TestHandlerTransportErrorClosesConnection(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	c := dial(t, n.ws, "killed", client.Options{})
	for range c.Request(context.Background(), "kill", nil) {
	}
	if err := e.wait(t, "killed/kill"); err == nil {
		t.Fatal("command end got no error")
	}
	<-c.Done()
	if !isClose(c.Err(), "protocol") {
		t.Fatalf("client ended with %v; want close reason protocol", c.Err())
	}
}

// Shutdown ends active streams; their command end still fires, once.
func TestShutdownEndsStreams(t *testing.T) {
	e := newEnds()
	n := requestNode(t, edge.DefaultConfig(), e)
	c := dial(t, n.tcp, "draining", client.Options{})
	streamErr := make(chan error, 1)
	go func() {
		for _, err := range c.Request(context.Background(), "forever", nil) {
			if err != nil {
				streamErr <- err
				return
			}
		}
		streamErr <- nil
	}()
	<-n.started
	n.stop(t)
	if err := e.wait(t, "draining/forever"); err == nil {
		t.Fatal("command end of an abandoned stream got no error")
	}
	if err := <-streamErr; !isClose(err, "shutdown") {
		t.Fatalf("client's stream ended with %v; want close reason shutdown", err)
	}
}
