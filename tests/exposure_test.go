package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// embeddedArgs run the edge binary on an embedded server with every
// listener on a free loopback port and its data in a fresh folder.
func embeddedArgs(t *testing.T) []string {
	return []string{"--nats-listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--ws-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// The embedded NATS server with no user and the Go profiles serve without
// authentication: off loopback the edge refuses to start them, with an
// error naming the flags, and starts nothing (not even the embedded
// server's storage).
func TestOpenListenersAreRefused(t *testing.T) {
	for _, c := range []struct {
		what string
		args []string
		want []string
	}{
		{"embedded NATS on every interface", []string{"--nats-listen", "0.0.0.0:0"}, []string{"--allow-open-nats", "--nats-user", "--nats-password-file", "0.0.0.0:0"}},
		{"profiles on every interface", []string{"--pprof", "--admin-listen", "0.0.0.0:0"}, []string{"--allow-open-pprof", "0.0.0.0:0"}},
	} {
		args := append(embeddedArgs(t), c.args...)
		out, code := exitOutput(t, "edge", args...)
		if code == 0 || code == -1 {
			t.Errorf("%s: edge exited %d; want a refusal:\n%s", c.what, code, out)
		}
		mustContain(t, c.what, []byte(out), c.want...)
		if strings.Contains(out, "[Fx]") {
			t.Errorf("%s: the refusal is said twice, once by fx:\n%s", c.what, out)
		}
		if _, err := os.Stat(args[3]); !os.IsNotExist(err) {
			t.Errorf("%s: the data folder %s was made (%v); a refused start changes nothing", c.what, args[3], err)
		}
	}
}

// Allowed by their flags, open listeners start and the log says so
// loudly; the embedded server off loopback with a user needs no flag and
// gets no warning. Each node is stopped as soon as it has started.
func TestOpenListenersWhenAllowed(t *testing.T) {
	pw := writeFile(t, "nats-password", "a password for the embedded server\n")
	for _, c := range []struct {
		what       string
		args, warn []string
	}{
		{"open NATS allowed", []string{"--nats-listen", "0.0.0.0:0", "--allow-open-nats"}, []string{openNATS}},
		{"NATS with a user, open profiles allowed",
			[]string{"--nats-listen", "0.0.0.0:0", "--nats-user", "edge", "--nats-password-file", pw,
				"--pprof", "--admin-listen", "0.0.0.0:0", "--allow-open-pprof"}, []string{openPprof}},
	} {
		p := startEdgeProcess(t, t.TempDir(), append(embeddedArgs(t), c.args...)...)
		if _, err := p.stop(t); err != nil {
			t.Errorf("%s: edge exited with %v", c.what, err)
		}
		var warned []string
		for _, l := range p.logs.all() {
			if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "OPEN ") {
				warned = append(warned, msg[:strings.Index(msg, ":")])
				if l["level"] != "warn" || l["addr"] != "0.0.0.0:0" {
					t.Errorf("%s: logged %v; want a warning naming the address", c.what, l)
				}
			}
		}
		if fmt.Sprint(warned) != fmt.Sprint(c.warn) {
			t.Errorf("%s: warned %q; want %q", c.what, warned, c.warn)
		}
	}
}

const openNATS, openPprof = "OPEN NATS", "OPEN PPROF"

// The embedded server with --nats-user lets in that user only; the edge
// itself connects with it and works: a producer with the password pushes
// to a client.
func TestEmbeddedNATSWithAUser(t *testing.T) {
	pw := writeFile(t, "nats-password", " s3cret-for-the-embedded-server \n")
	p := startEdgeProcess(t, t.TempDir(), append(embeddedArgs(t), "--nats-user", "edge", "--nats-password-file", pw)...)
	url := p.addr("nats")
	if p.started["nats_embedded"] != true || !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("started with %v; want an embedded server on loopback", p.started)
	}
	for _, o := range [][]nats.Option{nil, {nats.UserInfo("edge", "wrong")}, {nats.UserInfo("someone", "s3cret-for-the-embedded-server")}} {
		if nc, err := nats.Connect(url, o...); err == nil {
			nc.Close()
			t.Fatalf("connected to the embedded server without its user and password (options %d)", len(o))
		} else if !strings.Contains(err.Error(), "Authorization Violation") {
			t.Fatalf("connect without the password: %v; want an authorization violation", err)
		}
	}
	nc, err := nats.Connect(url, nats.UserInfo("edge", "s3cret-for-the-embedded-server"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := client.Dial(timeout(t), "ws://"+p.addr("websocket")+"/", client.Options{Session: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := newProducer(t, nc, "").Push(timeout(t), "alice", push.High, []byte("through the locked server"))
	if err != nil || ack.Status != protocol.StatusEnqueued {
		t.Fatalf("push: %+v %v", ack, err)
	}
	if f := recv(t, c); string(f.Payload) != "through the locked server" {
		t.Fatalf("alice got %q", f.Payload)
	}
	if _, err := p.stop(t); err != nil {
		t.Fatalf("edge exited with %v", err)
	}
}
