package edge_test

import (
	"context"
	"fmt"
	"iter"
	"net"
	"time"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/push"
)

// A server in development mode on loopback, a client holding session
// "alice", and a push to her from the same process.
func Example() {
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil { // the shared flushers
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error)
	go func() { served <- srv.ServeTCP(ln) }()

	c, err := client.Dial(ctx, "tcp://"+ln.Addr().String(), client.Options{Session: "alice"})
	if err != nil {
		panic(err)
	}
	alice := srv.Registry().Get("alice") // her connection's PushHandle
	err = alice.Push(ctx, push.High, edge.Envelope{Frame: edge.Frame{ID: "p1", ContentType: "text/plain", Payload: []byte("hello, alice")}})
	if err != nil {
		panic(err)
	}
	f, err := c.Recv(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s %s: %s\n", f.ID, f.Priority, f.ContentType, f.Payload)

	c.Close()
	srv.Shutdown(ctx)
	fmt.Println(<-served)
	// Output:
	// p1 high text/plain: hello, alice
	// edge: server closed
}

// A handler answering with a stream, and a client reading it. The stream is
// an iter.Seq2: each yield queues one response frame behind any pushes, and
// returns false once the client has gone or canceled.
func ExampleStream() {
	squares := func(ctx context.Context, req *edge.Request) (edge.Response, error) {
		return edge.Stream(func(yield func(edge.Frame, error) bool) {
			for i := 1; i <= 3; i++ {
				if !yield(edge.Frame{Payload: fmt.Appendf(nil, "%d", i*i)}, nil) {
					return
				}
			}
		}), nil
	}
	srv, _ := edge.NewServer(edge.Options{
		Config:   edge.DefaultConfig(),
		Auth:     edge.DevAuth{},
		Handlers: map[string]edge.Handler{"squares": squares},
	})
	_ = srv.Start(context.Background())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.ServeWebSocket(ln)
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/", client.Options{Session: "bob"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	var frames iter.Seq2[client.Frame, error] = c.Request(ctx, "squares", nil)
	for f, err := range frames {
		if err != nil {
			panic(err)
		}
		fmt.Println(string(f.Payload))
	}
	// Output:
	// 1
	// 4
	// 9
}

// TryPush never waits; what it cannot queue is the caller's to handle, or,
// under the TryPushDeadLetters policy, goes to the dead-letter sink.
func ExampleConn_TryPush() {
	srv, _ := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}})
	_ = srv.Start(context.Background())
	defer srv.Shutdown(context.Background())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.ServeTCP(ln)

	c, _ := client.Dial(context.Background(), "tcp://"+ln.Addr().String(), client.Options{Session: "carol"})
	carol := srv.Registry().Get("carol")
	fmt.Println(carol.TryPush(push.Low, edge.Envelope{Frame: edge.Frame{ID: "p1", Payload: []byte("hi")}}))
	c.Close()
	<-carol.Done()
	fmt.Println(carol.TryPush(push.Low, edge.Envelope{Frame: edge.Frame{ID: "p2", Payload: []byte("hi")}}))
	// Output:
	// <nil>
	// edge: connection closed
}

// toldReceipt passes on what became of each push it is the receipt of. Its
// buffer is the room it has: a receipt must never block the edge.
type toldReceipt chan string

func (r toldReceipt) Written(e *edge.Envelope) { r <- "written " + e.Frame.ID }
func (r toldReceipt) Dead(dl edge.DeadLetter)  { r <- "dead " + dl.Frame.ID + ": " + string(dl.Reason) }
func (r toldReceipt) Moved(session string, e *edge.Envelope) {
	r <- "moved " + e.Frame.ID + " with " + session
}

// A push's receipt is told once what became of it: here one push is
// written, and one whose expiry passed before it could be is dead.
func ExampleReceipt() {
	srv, _ := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}})
	_ = srv.Start(context.Background())
	defer srv.Shutdown(context.Background())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.ServeTCP(ln)
	c, _ := client.Dial(context.Background(), "tcp://"+ln.Addr().String(), client.Options{Session: "dave"})
	defer c.Close()
	dave := srv.Registry().Get("dave")

	told := make(toldReceipt, 1)
	_ = dave.TryPush(push.High, edge.Envelope{Frame: edge.Frame{ID: "p1"}, Receipt: told})
	fmt.Println(<-told)
	stale := edge.Envelope{Frame: edge.Frame{ID: "p2"}, Expires: time.Now().Add(-time.Second), Receipt: told}
	_ = dave.TryPush(push.High, stale)
	fmt.Println(<-told)
	// Output:
	// written p1
	// dead p2: expired
}
