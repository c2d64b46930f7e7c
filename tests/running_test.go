package tests

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// startedAddr is the address the edge's "edge started" log line (JSON, as
// the edge logs when not on a terminal) gives for key, as one to dial:
// a listener on every interface is reached on loopback.
func startedAddr(t *testing.T, log, key string) string {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) != nil || line["msg"] != "edge started" {
			continue
		}
		addr, _ := line[key].(string)
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("edge started with %s %q", key, addr)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	t.Fatalf("no edge started line in:\n%s", log)
	return ""
}

// The commands of docs/running.md, in order, as written: edge and pushctl
// on PATH as the page says (./bin after make build), the files they name
// made first (a password, a JWT secret, an NKey seed, a public key), and a
// three-server NATS cluster where the page names n1, n2 and n3. The
// listeners the page gives fixed ports are given free ones: 0.0.0.0:4222
// is moved (with the URL that reaches it), and the client listeners of
// the environment (PUSHFABRIC_*_LISTEN) are on port 0, as are :8080 and
// :8081.
func TestRunningRecipes(t *testing.T) {
	dir, bin := checkout(t)
	env := append(quickstartEnv(dir), "PATH="+bin+":"+os.Getenv("PATH"))
	port := natstest.FreePort(t)
	addrs := strings.NewReplacer("0.0.0.0:4222", fmt.Sprintf("0.0.0.0:%d", port), "127.0.0.1:4222", fmt.Sprintf("127.0.0.1:%d", port),
		":8080", ":0", ":8081", ":0", ":8443", ":0", ":8444", ":0")
	write := func(name string, content []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("nats-password", []byte("a password for the edge user\n"))
	write("secret", secret)
	run := func(line string, extraEnv ...string) string {
		t.Helper()
		out, code := shell(t, dir, append(env, extraEnv...), addrs.Replace(line))
		if code != 0 {
			t.Fatalf("%s: exit status %d", line, code)
		}
		return out
	}

	doc, err := os.ReadFile("../docs/running.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../cmd/edge/app/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, goBlock, _ := strings.Cut(string(doc), "```go\n")
	goBlock, _, _ = strings.Cut(goBlock, "```")
	if goBlock == "" || !strings.Contains(strings.ReplaceAll(string(example), "\n\t\t", "\n"), goBlock) {
		t.Errorf("docs/running.md's Go block is not cmd/edge/app's ExampleRun, which compiles:\n%s", goBlock)
	}

	var edge *process
	var alice *client.Conn
	var tlsLog string // the TLS node's start line
	lines := docLines(t, "../docs/running.md")
	if len(lines) != 8 {
		t.Fatalf("the commands of docs/running.md: %q", lines)
	}
	for _, l := range lines {
		line := l.cmd
		switch {
		case line == "edge": // one node on a laptop
			p := startLine(t, dir, env, line)
			log := p.waitFor(t, `"msg":"edge started"`)
			if !strings.Contains(log, "DEVELOPMENT MODE") || !strings.Contains(log, `"nats_embedded":true`) {
				t.Fatalf("edge with no flags: not an embedded server in development mode:\n%s", log)
			}
			if _, err := os.Stat(filepath.Join(dir, "data", "nats", "pushfabric-edge.lock")); err != nil {
				t.Fatalf("edge keeps no locked data/nats: %v", err)
			}
			if err := p.interrupt(t, syscall.SIGTERM); err != nil {
				t.Fatalf("edge after SIGTERM: %v", err)
			}
		case strings.HasPrefix(line, "edge --nats-listen 0.0.0.0:4222 "):
			edge = startLine(t, dir, env, addrs.Replace(line))
			log := edge.waitFor(t, `"msg":"edge started"`)
			alice = dial(t, "ws://"+startedAddr(t, log, "websocket")+"/", "alice", client.Options{})
		case strings.HasPrefix(line, "nats --server nats://127.0.0.1:4222 --user edge "):
			run(line)
			if f := recv(t, alice); string(f.Payload) != "hi" {
				t.Fatalf("alice got %q from the nats CLI", f.Payload)
			}
		case strings.HasPrefix(line, "pushctl push --nats-user edge "):
			if out := run(line, fmt.Sprintf("NATS_URL=nats://127.0.0.1:%d", port)); !strings.Contains(out, "enqueued on node") {
				t.Fatalf("%s: %s", line, out)
			}
			if f := recv(t, alice); string(f.Payload) != "hi" {
				t.Fatalf("alice got %q from pushctl", f.Payload)
			}
			if err := edge.interrupt(t, syscall.SIGTERM); err != nil {
				t.Fatalf("edge after SIGTERM: %v", err)
			}
		case strings.HasPrefix(line, "edge --nats-url nats://n1:4222,nats://n2:4222,nats://n3:4222 "):
			clusterRecipe(t, dir, env, addrs.Replace(line))
		case strings.HasPrefix(line, "openssl req -x509 "):
			run(line)
		case strings.HasPrefix(line, "edge --tls-cert tls.crt --tls-key tls.key "):
			edge, tlsLog = tlsRecipe(t, dir, env, addrs.Replace(line))
		case strings.HasPrefix(line, "pushctl listen --addr wss://edge.example:8443/ --ca tls.crt "):
			listenTLSRecipe(t, dir, env, tlsLog, line)
			if err := edge.interrupt(t, syscall.SIGTERM); err != nil {
				t.Fatalf("the TLS node after SIGTERM: %v", err)
			}
		default:
			t.Fatalf("no check for docs/running.md's %q", line)
		}
	}
}

// clusterRecipe runs the page's cluster command, line, against three
// servers that let in only the NKey user of edge.nk, with clients' tokens
// checked with jwt.pub (Ed25519): the node connects, makes PUSH_DLQ with
// three replicas, and delivers a push to a client that connects with an
// EdDSA token.
func clusterRecipe(t *testing.T, dir string, env []string, line string) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	if err := os.WriteFile(filepath.Join(dir, "edge.nk"), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	signer := nats.Nkey(pub, user.Sign)
	servers := natstest.ClusterWith(t, 3, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} }, signer)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	line = strings.Replace(line, "nats://n1:4222,nats://n2:4222,nats://n3:4222", strings.Join(urls, ","), 1)

	pubKey, privKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(pubKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(privKey)
	if err := os.WriteFile(filepath.Join(dir, "jwt.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}

	edge := startLine(t, dir, env, line)
	log := edge.waitFor(t, `"msg":"edge started"`)
	if !strings.Contains(log, `"node":"edge-a"`) || !strings.Contains(log, `"auth":"jwt-public-key"`) {
		t.Fatalf("the cluster node started otherwise:\n%s", log)
	}
	nc := natstest.Connect(t, servers[1], signer)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(timeout(t), protocol.DeadLetterStream)
	if err != nil || st.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("%s: %v; want it with 3 replicas", protocol.DeadLetterStream, err)
	}
	tok, err := token.Mint(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), "dave", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(timeout(t), "ws://"+startedAddr(t, log, "websocket")+"/", client.Options{Token: tok})
	if err != nil {
		t.Fatalf("a client with an EdDSA token: %v", err)
	}
	defer c.Close()
	waitForInterest(t, servers, "push.dave.high") // the node's subscription, on every server of the cluster
	p := newProducer(t, nc, "")
	if ack, err := p.Push(timeout(t), "dave", push.High, []byte("through the cluster"), producer.WithAck(protocol.AckWritten)); err != nil || ack.Node != "edge-a" {
		t.Fatalf("push to dave: %+v, %v", ack, err)
	}
	if f := recv(t, c); string(f.Payload) != "through the cluster" {
		t.Fatalf("dave got %q", f.Payload)
	}
	if err := edge.interrupt(t, syscall.SIGTERM); err != nil {
		t.Fatalf("the cluster node after SIGTERM: %v", err)
	}
}

// tlsRecipe runs the page's TLS command, line, with the certificate the
// page's openssl command made: the node says it serves TLS. It returns the
// node and its start line.
func tlsRecipe(t *testing.T, dir string, env []string, line string) (*process, string) {
	edge := startLine(t, dir, env, line)
	log := edge.waitFor(t, `"msg":"edge started"`)
	if !strings.Contains(log, `"tls":true`) {
		t.Fatalf("the TLS node started without TLS:\n%s", log)
	}
	return edge, log
}

// listenTLSRecipe runs the page's pushctl listen over wss://, line, at the
// TLS node that logged log: it receives a push published on the node's
// embedded NATS server.
func listenTLSRecipe(t *testing.T, dir string, env []string, log, line string) {
	line = strings.Replace(line, "edge.example:8443", startedAddr(t, log, "websocket"), 1)
	listener := startLine(t, dir, env, line)
	listener.waitFor(t, `listening as session "alice"`)
	_, embedded, _ := strings.Cut(log, `"nats":"`) // the embedded server's URL, as the start line gives it
	embedded, _, _ = strings.Cut(embedded, `"`)
	nc, err := nats.Connect(embedded)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	request(t, nc, pushMsg("alice", "high", "tls-1", "over wss"))
	listener.waitFor(t, "tls-1: over wss")
	if err := listener.interrupt(t, syscall.SIGINT); err != nil {
		t.Fatalf("pushctl listen after SIGINT: %v", err)
	}
}
