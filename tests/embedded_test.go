package tests

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// The edge binary with no flags at all: an embedded NATS server on
// 127.0.0.1:4222, development mode on loopback; a client connects and the
// stock nats CLI pushes to it.
func TestEmbeddedDefaultWithTheNATSCLI(t *testing.T) {
	nats := natstest.CLI(t)
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:4222", "127.0.0.1:9090"} {
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Fatalf("the default address %s is taken: %v", addr, err)
		} else {
			ln.Close()
		}
	}
	dir := t.TempDir()
	p := startEdgeProcess(t, dir)
	if p.addr("nats") != "nats://127.0.0.1:4222" || p.started["nats_embedded"] != true || p.started["auth"] != "development" {
		t.Fatalf("started with %v; want embedded NATS on 127.0.0.1:4222 in development mode", p.started)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "nats", "jetstream")); err != nil {
		t.Fatalf("embedded JetStream data: %v", err)
	}
	c, err := client.Dial(timeout(t), "ws://127.0.0.1:8080/", client.Options{Session: "cli-demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := exec.Command(nats, "--server", "nats://127.0.0.1:4222", "request", "push.cli-demo.high", "hello from the nats CLI").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"status":"enqueued"`) {
		t.Fatalf("nats request: %v\n%s", err, out)
	}
	if f := recv(t, c); string(f.Payload) != "hello from the nats CLI" {
		t.Fatalf("client got %q", f.Payload)
	}
	if _, err := p.stop(t); err != nil {
		t.Fatalf("edge exited with %v", err)
	}
}
