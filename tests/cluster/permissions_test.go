package cluster

import (
	"context"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

var jwtSecret = []byte("an HS256 secret of at least 32 bytes, for tests")

// The shipped permissions, on the shipped cluster: what a role must not do
// is refused, and the server says so to the client; everything each role
// does — the edge binary, the producer client, the backend helper, pushctl
// — works under them, with no permission error on either edge node.
func TestPermissions(t *testing.T) {
	c := startCluster(t)
	// e1 is rate-limited, so pushes queue there for a hand-over to follow;
	// it makes PUSH_DLQ with the replicas it chooses, e2 asks for 3.
	e1 := c.startEdge(t, "e1", 0, "--rate", "1", "--burst", "1")
	e2 := c.startEdge(t, "e2", 1, "--redeliver-offline", "--dlq-replicas", "3")
	ops := c.connect(t, "operator", 2)
	store := openDLQ(t, ops)
	if r := replicas(t, ops); r != 3 {
		t.Fatalf("PUSH_DLQ has %d replicas; want 3", r)
	}

	t.Run("refused", func(t *testing.T) {
		prod := c.connect(t, "producer", 1)
		subscribeRefused(t, prod, "push.>")
		subscribeRefused(t, prod, "_INBOX_edge.>")
		ctl := c.connect(t, "edge", 0)
		spy, err := ctl.SubscribeSync("push.x.ctl")
		if err != nil {
			t.Fatal(err)
		}
		if err := ctl.Flush(); err != nil {
			t.Fatal(err)
		}
		publishRefused(t, prod, "push.x.ctl")
		if m, err := spy.NextMsg(100 * time.Millisecond); err == nil {
			t.Fatalf("a refused takeover reached the edge's subscription: %v", m.Subject)
		}
		publishRefused(t, c.connect(t, "backend", 2), "push.x.high")
		purgeRefused(t, c, store)
	})

	alice := dial(t, e2, "alice")
	t.Run("allowed/written", func(t *testing.T) {
		c.interest(t, 0, "push.alice.high")
		p := startProducer(t, c.connect(t, "producer", 0)) // n1; alice is on e2, on n2
		ack, err := p.Push(t.Context(), "alice", push.High, []byte("hi"), producer.WithAck(protocol.AckWritten))
		if err != nil || ack.Status != protocol.StatusWritten || ack.Node != "e2" {
			t.Fatalf("push: ack %+v, %v; want written by e2", ack, err)
		}
		if f := recv(t, alice); string(f.Payload) != "hi" {
			t.Fatalf("alice got %q; want hi", f.Payload)
		}
	})

	t.Run("allowed/stream", func(t *testing.T) {
		const frames = 500
		startBackend(t, c.connect(t, "backend", 2), "count", frames)
		c.interest(t, 1, "req.push.count")
		got := 0
		for f, err := range alice.Request(t.Context(), "count", nil) {
			if err != nil {
				t.Fatalf("after %d frames: %v", got, err)
			}
			if want := fmt.Sprint(got); string(f.Payload) != want {
				t.Fatalf("frame %q; want %s", f.Payload, want)
			}
			got++
		}
		if got != frames {
			t.Fatalf("%d frames; want %d", got, frames)
		}
	})

	t.Run("allowed/park and replay", func(t *testing.T) {
		p := startProducer(t, c.connect(t, "producer", 1))
		ack, err := p.Push(t.Context(), "carol", push.High, []byte("parked"), producer.WithID("carol-1"))
		if err != nil || ack.Status != protocol.StatusDead || ack.Reason != string(push.ReasonOffline) {
			t.Fatalf("push to offline carol: ack %+v, %v; want dead offline", ack, err)
		}
		waitForLetters(t, store, "carol", 1)
		carol := dial(t, e1, "carol") // e1 does not redeliver: the operator replays
		c.interest(t, 2, "push.carol.high")
		out, err := exec.Command(binary(t, "pushctl"), "dlq", "replay", "--session", "carol",
			"--nats", c.url(2), "--nats-nkey", c.seeds["operator"], "--nats-inbox-prefix", "_INBOX_operator").CombinedOutput()
		if err != nil {
			t.Fatalf("pushctl dlq replay: %v\n%s", err, out)
		}
		if f := recv(t, carol); f.ID != "carol-1" {
			t.Fatalf("carol got %s; want carol-1", f.ID)
		}
		waitForLetters(t, store, "carol", 0)
	})

	t.Run("allowed/park and redeliver", func(t *testing.T) {
		p := startProducer(t, c.connect(t, "producer", 2))
		if ack, err := p.Push(t.Context(), "dave", push.Low, []byte("parked"), producer.WithID("dave-1")); err != nil || ack.Status != protocol.StatusDead {
			t.Fatalf("push to offline dave: ack %+v, %v; want dead offline", ack, err)
		}
		waitForLetters(t, store, "dave", 1)
		if f := recv(t, dial(t, e2, "dave")); f.ID != "dave-1" {
			t.Fatalf("dave got %s; want dave-1", f.ID)
		}
		waitForLetters(t, store, "dave", 0)
	})

	t.Run("allowed/hand-over", func(t *testing.T) {
		old := dial(t, e1, "erin")
		c.interest(t, 2, "push.erin.low")
		p := startProducer(t, c.connect(t, "producer", 2))
		const n = 10
		for i := range n {
			ack, err := p.Push(t.Context(), "erin", push.Low, nil, producer.WithID(fmt.Sprintf("erin-%d", i)))
			if err != nil || ack.Node != "e1" {
				t.Fatalf("push %d: ack %+v, %v; want enqueued by e1", i, ack, err)
			}
		}
		fresh := dial(t, e2, "erin")
		got := map[string]bool{}
		for f, err := old.Recv(t.Context()); err == nil; f, err = old.Recv(t.Context()) {
			got[f.ID] = true // written before the takeover
		}
		for len(got) < n {
			got[recv(t, fresh).ID] = true
		}
		waitForHandovers(t, e1)
	})

	t.Run("allowed/operator's nats CLI", func(t *testing.T) {
		nats := natstest.CLI(t)
		env := append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
		servers := strings.Join([]string{c.url(0), c.url(1), c.url(2)}, ",")
		run(t, env, nats, "context", "save", "push-ops", "--server", servers,
			"--nkey", c.seeds["operator"], "--inbox-prefix", "_INBOX_operator")
		run(t, env, nats, "--context", "push-ops", "stream", "info", "PUSH_DLQ")
		run(t, env, nats, "--context", "push-ops", "stream", "add", "--config", "../../deployments/nats/push-replay-stream.json")
		run(t, env, nats, "--context", "push-ops", "stream", "rm", "PUSH_REPLAY", "-f")
		run(t, env, binary(t, "pushctl"), "dlq", "stats", "--context", "push-ops")
	})

	for _, e := range []*edgeProcess{e1, e2} {
		if err := get("http://"+e.addr("admin")+"/readyz", nil); err != nil { // it asks JetStream
			t.Errorf("%s not ready: %v", e.node, err)
		}
		if v := e.metric(t, "pushfabric_nats_permission_errors_total"); v != "0" {
			t.Errorf("%s: %s permission errors; want 0", e.node, v)
		}
	}
	if letters := countLetters(t, store, ""); letters != 0 {
		t.Errorf("%d dead letters left; want 0", letters)
	}
}

// run runs a command with env, which must succeed.
func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", filepath.Base(name), args, err, out)
	}
}

// subscribeRefused subscribes rc to subject and waits for the server to
// refuse it.
func subscribeRefused(t *testing.T, rc *roleConn, subject string) {
	t.Helper()
	if _, err := rc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	rc.refused(t, subject)
}

// publishRefused publishes on subject from rc and waits for the server to
// refuse it.
func publishRefused(t *testing.T, rc *roleConn, subject string) {
	t.Helper()
	if err := rc.Publish(subject, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	rc.refused(t, subject)
}

// purgeRefused has the edge's user purge PUSH_DLQ, which holds a letter
// the producer parked: the server refuses it and the letter stays.
func purgeRefused(t *testing.T, c *natsCluster, store *dlq.Store) {
	t.Helper()
	p := startProducer(t, c.connect(t, "producer", 0))
	if _, err := p.Push(t.Context(), "nobody", push.High, nil); err != nil {
		t.Fatal(err)
	}
	waitForLetters(t, store, "nobody", 1)
	edge := c.connect(t, "edge", 0)
	js, err := jetstream.New(edge.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, protocol.DeadLetterStream) // allowed: the edge reads the stream's info
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("the edge's user purged PUSH_DLQ")
	}
	edge.refused(t, "$JS.API.STREAM.PURGE.PUSH_DLQ")
	if n := countLetters(t, store, "nobody"); n != 1 {
		t.Fatalf("%d dead letters for nobody after the refused purge; want 1", n)
	}
	if _, err := store.Purge(t.Context(), dlq.Filter{Session: "nobody"}); err != nil { // the operator may
		t.Fatalf("operator's purge: %v", err)
	}
}

// openDLQ opens the dead-letter stream as rc's user.
func openDLQ(t *testing.T, rc *roleConn) *dlq.Store {
	t.Helper()
	js, err := jetstream.New(rc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	var store *dlq.Store
	waitFor(t, "PUSH_DLQ, made by the edge nodes", func() bool {
		store, err = dlq.Open(t.Context(), js, protocol.DefaultPrefix)
		return err == nil
	})
	return store
}

// replicas is the number of PUSH_DLQ's replicas, as rc's user reads it.
func replicas(t *testing.T, rc *roleConn) int {
	t.Helper()
	js, err := jetstream.New(rc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Replicas
}

// countLetters counts the dead letters of session ("": all).
func countLetters(t *testing.T, store *dlq.Store, session string) int {
	t.Helper()
	n, err := letters(t, store, session)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func letters(t *testing.T, store *dlq.Store, session string) (int, error) {
	n := 0
	err := store.Each(t.Context(), dlq.Filter{Session: session}, func(dlq.Entry) error {
		n++
		return nil
	})
	return n, err
}

// waitForLetters waits until session has n dead letters. (Reading the
// stream fails while its replicas elect a leader: it is tried again.)
func waitForLetters(t *testing.T, store *dlq.Store, session string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d dead letters for %s", n, session), func() bool {
		got, err := letters(t, store, session)
		return err == nil && got == n
	})
}

// waitForHandovers waits until e has handed over pushes and each was
// taken.
func waitForHandovers(t *testing.T, e *edgeProcess) {
	t.Helper()
	waitFor(t, "hand-overs taken", func() bool {
		v := e.metric(t, `pushfabric_handovers_total{outcome="taken"}`)
		return v != "0"
	})
	for _, outcome := range []string{"dead", "no_responders", "timeout", "unsent"} {
		if v := e.metric(t, fmt.Sprintf(`pushfabric_handovers_total{outcome=%q}`, outcome)); v != "0" {
			t.Errorf("%s hand-overs %s; want 0", v, outcome)
		}
	}
}

// startProducer starts the producer client on rc, stopped at cleanup.
func startProducer(t *testing.T, rc *roleConn) *producer.Producer {
	t.Helper()
	p, err := producer.New(rc.Conn, producer.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}

// startBackend serves method on rc with the backend helper: n frames,
// "0" to "n-1".
func startBackend(t *testing.T, rc *roleConn, method string, n int) {
	t.Helper()
	h := func(context.Context, *backend.Request) iter.Seq2[backend.Reply, error] {
		return func(yield func(backend.Reply, error) bool) {
			for i := range n {
				if !yield(backend.Reply{Payload: []byte(fmt.Sprint(i))}, nil) {
					return
				}
			}
		}
	}
	svc, err := backend.New(rc.Conn, method, h, backend.Options{OnError: func(_ *backend.Request, err error) { t.Errorf("backend: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rc.Flush(); err != nil { // the queue subscription is in place
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
}

// dial connects a client holding session to e's WebSocket listener,
// closed at cleanup.
func dial(t *testing.T, e *edgeProcess, session string) *client.Conn {
	t.Helper()
	tok, err := token.Mint(jwtSecret, session, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	cl, err := client.Dial(ctx, "ws://"+e.addr("websocket")+"/", client.Options{Token: tok})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", e.node, session, err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func recv(t *testing.T, c *client.Conn) client.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	f, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return f
}
