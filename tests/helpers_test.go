package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// testTimeout bounds every wait; reaching it is a failure.
const testTimeout = 60 * time.Second

var secret = []byte("an HS256 secret of at least 32 bytes, for tests")

func timeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// edgeConfig is a node on s with listeners on random loopback ports and
// JWT authentication.
func edgeConfig(t testing.TB, s *server.Server, node string) app.Config {
	cfg := app.DefaultConfig()
	cfg.WSListen, cfg.TCPListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Bus.URLs = []string{s.ClientURL()}
	cfg.Identity.Node = node
	cfg.JWTSecretFile = filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(cfg.JWTSecretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startEdge runs an edge node in the test process, stopped at cleanup.
func startEdge(t testing.TB, cfg app.Config) *edgeNode {
	t.Helper()
	node, stop, err := app.Run(timeout(t), cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("edge %s: %v", cfg.Identity.Node, err)
	}
	n := &edgeNode{Node: node, stop: stop}
	t.Cleanup(func() { n.shutdown(t) })
	return n
}

type edgeNode struct {
	*app.Node
	stop func(context.Context) error
	once sync.Once
}

func (n *edgeNode) shutdown(t testing.TB) {
	n.once.Do(func() {
		if err := n.stop(timeout(t)); err != nil {
			t.Errorf("edge stop: %v", err)
		}
	})
}

func (n *edgeNode) ws() string  { return fmt.Sprintf("ws://%s/", n.Addr("websocket")) }
func (n *edgeNode) tcp() string { return fmt.Sprintf("tcp://%s", n.Addr("tcp")) }

func mint(t testing.TB, session string) string {
	t.Helper()
	tok, err := token.Mint(secret, session, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dial connects a client holding session, closed at cleanup.
func dial(t testing.TB, addr, session string, o client.Options) *client.Conn {
	t.Helper()
	o.Token = mint(t, session)
	c, err := client.Dial(timeout(t), addr, o)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, session, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func recv(t testing.TB, c *client.Conn) client.Frame {
	t.Helper()
	f, err := c.Recv(timeout(t))
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return f
}

// pushMsg is a push as a producer publishes it with nats.go.
func pushMsg(session, prio, id, payload string) *nats.Msg {
	return &nats.Msg{
		Subject: protocol.PushSubject(protocol.DefaultPrefix, session, prio),
		Header:  nats.Header{protocol.HeaderID: []string{id}},
		Data:    []byte(payload),
	}
}

// dlqStream returns the dead-letter stream on s.
func dlqStream(t testing.TB, s *server.Server) jetstream.Stream {
	t.Helper()
	js := natstest.JetStream(t, s)
	st, err := js.Stream(timeout(t), protocol.DeadLetterStream)
	if err != nil {
		t.Fatalf("stream %s: %v", protocol.DeadLetterStream, err)
	}
	return st
}

// deadLetter is one message of the dead-letter stream.
type deadLetter struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// deadLetters reads every dead letter in the stream, with an ordered
// consumer.
func deadLetters(t testing.TB, s *server.Server) []deadLetter {
	t.Helper()
	js := natstest.JetStream(t, s)
	deadline := time.Now().Add(testTimeout)
	for {
		out, err := readDeadLetters(timeout(t), js)
		// A replicated stream electing a leader (a cluster just formed, a
		// server gone) answers no one for a moment: ask again.
		if err == nil || !isNoResponders(err) || time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("reading %s: %v", protocol.DeadLetterStream, err)
			}
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isNoResponders: nobody answered a JetStream API request, as nats.go
// says it, whether the jetstream package wrapped the error or not.
func isNoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		strings.Contains(err.Error(), nats.ErrNoResponders.Error())
}

// readDeadLetters reads the whole dead-letter stream once.
func readDeadLetters(ctx context.Context, js jetstream.JetStream) ([]deadLetter, error) {
	st, err := js.Stream(ctx, protocol.DeadLetterStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil, err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	out := make([]deadLetter, 0, info.State.Msgs)
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(int(min(1000, info.State.Msgs-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			out = append(out, deadLetter{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isClose(err error, reason wire.CloseReason) bool {
	var ce *client.CloseError
	return errors.As(err, &ce) && ce.Reason == reason
}

// newProducer is a producer client on nc, named name (default "producer"),
// closed at cleanup.
func newProducer(t testing.TB, nc *nats.Conn, name string) *producer.Producer {
	t.Helper()
	p, err := producer.New(nc, producer.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}
