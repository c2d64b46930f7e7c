package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// With ConnectRetry, a node whose NATS is not there yet starts anyway: it
// is not ready (/readyz names NATS) and refuses clients; once NATS comes
// up on that address it turns ready, has made its dead-letter stream, and
// a client gets its pushes.
func TestNodeStartsBeforeNATSWithConnectRetry(t *testing.T) {
	before := goleak.IgnoreCurrent()
	port := natstest.FreePort(t)
	cfg, _ := embeddedConfig(t)
	cfg.Bus.URLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}
	cfg.Bus.ConnectRetry = true
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	node, stop, err := app.Run(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("app.Run with no NATS yet: %v; want it started", err)
	}
	readyz := "http://" + node.Addr("admin").String() + "/readyz"
	if code, body := get(t, readyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS") {
		t.Errorf("/readyz with no NATS: %d %q; want 503 naming NATS", code, body)
	}
	addr := "tcp://" + node.Addr("tcp").String()
	var ce *client.CloseError
	if _, err := client.Dial(ctx, addr, client.Options{Session: "early"}); !errors.As(err, &ce) || ce.Reason != wire.CloseShutdown {
		t.Errorf("a client with no NATS: %v; want refused with close reason shutdown", err)
	}

	opts := natstest.Options(t, "late")
	opts.Port = port
	s := natstest.StartWith(t, opts)
	for code, body := get(t, readyz); code != http.StatusOK; code, body = get(t, readyz) {
		if ctx.Err() != nil {
			t.Fatalf("/readyz once NATS is up: %d %q; want 200", code, body)
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint: there is nothing to wait on
	}
	js, err := jetstream.New(node.Bus.NC)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := js.Stream(ctx, protocol.DeadLetterStream); err != nil; _, err = js.Stream(ctx, protocol.DeadLetterStream) {
		if ctx.Err() != nil {
			t.Fatalf("the dead-letter stream once NATS is up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := client.Dial(ctx, addr, client.Options{Session: "alice"})
	if err != nil {
		t.Fatalf("a client once NATS is up: %v", err)
	}
	nc := natstest.Connect(t, s)
	reply, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: protocol.PushSubject(cfg.Identity.Prefix, "alice", "high"), Data: []byte("hi")})
	if ack, perr := protocol.ParseAck(reply); err != nil || perr != nil || ack.Status != protocol.StatusEnqueued {
		t.Fatalf("push to alice: %+v, %v, %v; want enqueued", ack, err, perr)
	}
	if f, err := c.Recv(ctx); err != nil || string(f.Payload) != "hi" {
		t.Fatalf("alice got %q, %v; want hi", f.Payload, err)
	}
	_ = c.Close()
	nc.Close()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
}

// get is the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A node still waiting for its NATS stops at once, leaving nothing running.
func TestNodeWaitingForNATSStops(t *testing.T) {
	before := goleak.IgnoreCurrent()
	cfg, _ := embeddedConfig(t)
	cfg.Bus.URLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))}
	cfg.Bus.ConnectRetry = true
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, stop, err := app.Run(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	goleak.VerifyNone(t, before, natstest.AsyncPublisherRace())
}
