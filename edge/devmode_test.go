package edge_test

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
)

// A server in development mode says so once, however many listeners it
// serves (a node serves two: WebSocket and TCP).
func TestDevelopmentModeIsSaidOnce(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	n := startNode(t, edge.DefaultConfig(), edge.Options{Logger: zap.New(core)})
	c := dial(t, n.tcp, "alice", client.Options{})
	_ = c.Close()
	c = dial(t, n.ws, "alice", client.Options{})
	_ = c.Close() // both listeners serve: each has said what it would say
	if got := logs.FilterMessageSnippet("DEVELOPMENT MODE").Len(); got != 1 {
		t.Fatalf("development mode said %d times; want once", got)
	}
}
