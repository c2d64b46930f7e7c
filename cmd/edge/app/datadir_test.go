package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// Two nodes never open one JetStream store: a second node on a data
// directory a running node holds is refused before it touches it — on
// another port, or on the running node's own port, where the error is
// still about the directory — with a hint to share the running server.
// The first node keeps serving, and its store is intact: its dead letters
// are all there, also after it restarts, which rebuilds no stream state.
func TestSecondNodeOnTheSameDataDirIsRefused(t *testing.T) {
	cfg, port := embeddedConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	first, stop, err := app.Run(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	const letters = 5
	for i := range letters {
		publishLetter(ctx, t, first.Bus.NC, fmt.Sprintf("s%d", i))
	}
	for _, c := range []struct{ what, port string }{
		{"another port", fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))},
		{"the same port", port},
	} {
		second := cfg
		second.Bus.Embedded.Listen = c.port
		_, stop2, err := app.Run(ctx, second, zap.NewNop())
		if err == nil {
			_ = stop2(context.Background())
			t.Fatalf("%s: a second node started on %s; want it refused", c.what, cfg.Bus.Embedded.DataDir)
		}
		if !errors.Is(err, bus.ErrDataDirLocked) || !strings.Contains(err.Error(), cfg.Bus.Embedded.DataDir) ||
			!strings.Contains(err.Error(), "--nats-url "+first.Bus.URL()) {
			t.Errorf("%s: %v; want the data directory named as in use, with a hint to --nats-url %s", c.what, err, first.Bus.URL())
		}
	}
	if n := storedLetters(ctx, t, first.Bus.NC); n != letters {
		t.Errorf("the first node's stream holds %d dead letters; want %d", n, letters)
	}
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	again, stop, err := app.Run(ctx, cfg, zap.New(core))
	if err != nil {
		t.Fatalf("restart on the same data directory: %v", err)
	}
	defer func() { _ = stop(context.Background()) }()
	if n := storedLetters(ctx, t, again.Bus.NC); n != letters {
		t.Errorf("after a restart the stream holds %d dead letters; want %d", n, letters)
	}
	for _, e := range logs.All() {
		if s := fmt.Sprint(e.ContextMap()["text"]); strings.Contains(s, "outdated") || strings.Contains(s, "rebuil") {
			t.Errorf("the restarted node's nats-server: %s; want the store found as it was left", s)
		}
	}
}

func publishLetter(ctx context.Context, t *testing.T, nc *nats.Conn, session string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subject := protocol.DeadLetterSubject(push.DefaultIdentity().Prefix, push.ReasonOffline, session, "high")
	if _, err := js.Publish(ctx, subject, []byte("hi")); err != nil {
		t.Fatal(err)
	}
}

func storedLetters(ctx context.Context, t *testing.T, nc *nats.Conn) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
