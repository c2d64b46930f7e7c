package bus

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/push"
)

// A node with an embedded server asks it why it closed the node's
// connection, once the node is back: here the server kicked it.
func TestEmbeddedServerSaysWhyItClosedTheConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Embedded = EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: t.TempDir()}
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, push.DefaultIdentity(), cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	cid, err := c.NC.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.server.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessage("nats server says why it closed the connection").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reason logged; logs: %v", logs.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
	e := logs.FilterMessage("nats server says why it closed the connection").All()[0].ContextMap()
	if e["reason"] != "Kicked" || e["cid"] != cid {
		t.Errorf("logged %v; want reason Kicked, cid %d", e, cid)
	}
	if st := c.Stats(); st.ServerSlowConsumers != 0 || st.Reconnects != 1 {
		t.Errorf("stats %+v; want 1 reconnect and no slow consumer", st)
	}
}
