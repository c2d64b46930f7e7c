package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// waitLimit bounds every wait on a condition: generous, for a loaded
// machine. An edge's start waits longer than the edge gives itself
// (a minute), so that a start that fails says why.
const (
	waitLimit      = 30 * time.Second
	edgeStartLimit = 90 * time.Second
)

// roles are the users of deployments/nats/push.conf.
var roles = []string{"edge", "producer", "broadcast", "backend", "operator", "membership", "presence", "kick", "events"}

// The binaries the tests run, built once.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binary is the path of a built binary: nats-server (from the module
// go.mod pins), edge or pushctl.
func binary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "pushfabric-cluster-bin-")
		if buildErr != nil {
			return
		}
		for name, pkg := range map[string]string{"nats-server": "github.com/nats-io/nats-server/v2",
			"edge": "../../cmd/edge", "pushctl": "../../cmd/pushctl"} {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// natsCluster is the shipped three-node cluster, running.
type natsCluster struct {
	dir     string
	client  []int             // client port of each server
	monitor []int             // monitoring port of each server
	servers []*exec.Cmd       // each server's process
	seeds   map[string]string // role → its NKey seed file
}

// url is the client URL of server i.
func (c *natsCluster) url(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.client[i]) }

// startCluster starts n1.conf, n2.conf and n3.conf from deployments/nats
// as they are, but for keys.conf (made here, one NKey per role) and what
// the command line overrides: ports, stores, routes. It waits until every
// server has its two routes and JetStream answers.
func startCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{dir: t.TempDir(), seeds: map[string]string{}}
	for _, f := range []string{"n1.conf", "n2.conf", "n3.conf", "push.conf"} {
		b, err := os.ReadFile(filepath.Join("../../deployments/nats", f))
		if err != nil {
			t.Fatal(err)
		}
		if node, ok := strings.CutSuffix(f, ".conf"); ok && node != "push" {
			b = c.substituteStore(t, b, node)
		}
		writeFile(t, filepath.Join(c.dir, f), b)
	}
	writeFile(t, filepath.Join(c.dir, "keys.conf"), []byte(c.makeKeys(t)))
	ports := freePorts(t, 9)
	c.client, c.monitor = ports[:3], ports[6:]
	var routes []string
	for _, p := range ports[3:6] {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	exited := make([]<-chan struct{}, 3)
	c.servers = make([]*exec.Cmd, 3)
	for i := range 3 {
		c.servers[i], exited[i] = start(t, binary(t, "nats-server"), "-c", filepath.Join(c.dir, fmt.Sprintf("n%d.conf", i+1)),
			"-a", "127.0.0.1", "-p", fmt.Sprint(ports[i]), "-m", fmt.Sprint(ports[6+i]),
			"--cluster", routes[i], "--routes", strings.Join(routes, ","))
	}
	for i := range 3 {
		waitFor(t, fmt.Sprintf("n%d's routes and JetStream", i+1), func() bool {
			select {
			case <-exited[i]:
				t.Fatalf("nats-server n%d exited", i+1)
			default:
			}
			return healthy(ports[6+i])
		})
	}
	return c
}

// substituteStore puts node's JetStream store in the test's directory.
func (c *natsCluster) substituteStore(t *testing.T, conf []byte, node string) []byte {
	t.Helper()
	shipped := fmt.Sprintf("store_dir: %q", "./data/cluster/"+node)
	if !strings.Contains(string(conf), shipped) {
		t.Fatalf("%s.conf has no %s", node, shipped)
	}
	return []byte(strings.Replace(string(conf), shipped, fmt.Sprintf("store_dir: %q", filepath.Join(c.dir, "data", node)), 1))
}

// interest waits until server i knows of a subscription matching subject:
// one of its own clients', or one a route brought from another server (a
// moment after it was made there).
func (c *natsCluster) interest(t *testing.T, i int, subject string) {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d", c.monitor[i])
	waitFor(t, fmt.Sprintf("n%d's interest in %s", i+1, subject), func() bool {
		var subsz struct {
			Total int `json:"total"`
		}
		if get(base+"/subsz?subs=1&acc=PUSH&test="+subject, &subsz) == nil && subsz.Total > 0 {
			return true
		}
		var routez struct {
			Routes []struct {
				Subs []string `json:"subscriptions_list"`
			} `json:"routes"`
		}
		if get(base+"/routez?subs=1", &routez) != nil {
			return false
		}
		for _, r := range routez.Routes {
			for _, sub := range r.Subs {
				if matches(sub, subject) {
					return true
				}
			}
		}
		return false
	})
}

// routedInterest waits until server i has heard of a subscription
// matching subject from n other servers (each over its routes): the
// subscriptions of edge nodes connected elsewhere.
func (c *natsCluster) routedInterest(t *testing.T, i int, subject string, n int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/routez?subs=1", c.monitor[i])
	waitFor(t, fmt.Sprintf("n%d's interest in %s from %d servers", i+1, subject, n), func() bool {
		var routez struct {
			Routes []struct {
				Remote string   `json:"remote_name"`
				Subs   []string `json:"subscriptions_list"`
			} `json:"routes"`
		}
		if get(url, &routez) != nil {
			return false
		}
		from := map[string]bool{} // the servers heard from
		for _, r := range routez.Routes {
			for _, sub := range r.Subs {
				if matches(sub, subject) {
					from[r.Remote] = true
				}
			}
		}
		return len(from) >= n
	})
}

// matches reports whether the subscription subject sub (wildcards and
// all; a queue subscription's queue after a space) matches subject.
func matches(sub, subject string) bool {
	sub, _, _ = strings.Cut(sub, " ")
	st, lt := strings.Split(sub, "."), strings.Split(subject, ".")
	for i, tok := range st {
		switch {
		case tok == ">":
			return len(lt) > i
		case i >= len(lt) || (tok != "*" && tok != lt[i]):
			return false
		}
	}
	return len(st) == len(lt)
}

// makeKeys makes each role's NKey, its seed in a file, and returns
// keys.conf.
func (c *natsCluster) makeKeys(t *testing.T) string {
	t.Helper()
	var conf strings.Builder
	for _, role := range roles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		c.seeds[role] = filepath.Join(c.dir, role+".nk")
		writeFile(t, c.seeds[role], seed)
		fmt.Fprintf(&conf, "%s_NKEY: %q\n", strings.ToUpper(role), pub)
	}
	return conf.String()
}

// healthy reports whether the server monitored on port has both routes
// and a JetStream that answers (/healthz is ok only once the meta leader
// is known).
func healthy(port int) bool {
	var routez struct {
		NumRoutes int `json:"num_routes"`
	}
	if get(fmt.Sprintf("http://127.0.0.1:%d/routez", port), &routez) != nil || routez.NumRoutes < 2 {
		return false
	}
	return get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port), nil) == nil
}

func get(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// roleConn is a connection as one role's user, with its inbox prefix; it
// keeps what the server reports asynchronously (permission violations).
type roleConn struct {
	*nats.Conn
	errs chan error // capacity 64; what does not fit is dropped
}

// connect connects to server i as role, closed when the test ends.
func (c *natsCluster) connect(t *testing.T, role string, i int) *roleConn {
	t.Helper()
	return c.connectTo(t, role, c.url(i))
}

// urls lists every server, server first first: a process that reconnects
// to another when one goes.
func (c *natsCluster) urls(first int) string {
	var out []string
	for k := range 3 {
		out = append(out, c.url((first+k)%3))
	}
	return strings.Join(out, ",")
}

// connectTo connects to the servers at url (a comma-separated list) as
// role, closed when the test ends.
func (c *natsCluster) connectTo(t *testing.T, role, url string) *roleConn {
	t.Helper()
	rc := &roleConn{errs: make(chan error, 64)}
	nk, err := nats.NkeyOptionFromSeed(c.seeds[role])
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nk, nats.CustomInboxPrefix("_INBOX_"+role), nats.Name("test "+role), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case rc.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s to %s: %v", role, url, err)
	}
	t.Cleanup(nc.Close)
	rc.Conn = nc
	return rc
}

// refused waits for the server's permission violation on subject.
func (rc *roleConn) refused(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case err := <-rc.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
			t.Logf("%s: another error: %v", rc.Opts.Name, err)
		case <-deadline:
			t.Fatalf("%s: no permission violation for %q within %v", rc.Opts.Name, subject, waitLimit)
		}
	}
}

// edgeProcess is the edge binary, running until the test ends.
type edgeProcess struct {
	node      string
	cmd       *exec.Cmd
	started   map[string]any      // its "edge started" log line, once awaitStart has it
	startLine chan map[string]any // gets that line as the edge writes it
	exited    chan error          // gets how it exited; never closed
	mu        sync.Mutex
	log       []string // guarded by mu: every line it wrote
}

// startEdge runs the edge binary as node on server i with the edge user's
// NKey and inbox prefix, and waits until it has started.
func (c *natsCluster) startEdge(t *testing.T, node string, i int, args ...string) *edgeProcess {
	t.Helper()
	p := c.launchEdge(t, node, i, args...)
	p.awaitStart(t)
	return p
}

// launchEdge starts edge node on NATS server i, as startEdge does, but
// does not wait for it to start: awaitStart does.
func (c *natsCluster) launchEdge(t *testing.T, node string, i int, args ...string) *edgeProcess {
	t.Helper()
	secret := filepath.Join(c.dir, "jwt-secret")
	writeFile(t, secret, jwtSecret)
	args = append([]string{"--node", node, "--log-format", "json", "--nats-url", c.url(i),
		"--nats-nkey", c.seeds["edge"], "--nats-inbox-prefix", "_INBOX_edge",
		"--jwt-secret-file", secret, "--ws-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0"}, args...)
	p := &edgeProcess{node: node, cmd: exec.Command(binary(t, "edge"), args...), exited: make(chan error, 1),
		startLine: make(chan map[string]any, 1)}
	p.cmd.Dir = t.TempDir()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(stderr, p.startLine)
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("edge %s:\n%s", node, strings.Join(p.lines(), "\n"))
		}
	})
	return p
}

// awaitStart waits for the edge's "edge started" line, and fails the test
// if the edge exits or takes too long first.
func (p *edgeProcess) awaitStart(t *testing.T) {
	t.Helper()
	select {
	case p.started = <-p.startLine:
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("edge %s exited before it started (%v):\n%s", p.node, err, strings.Join(p.lines(), "\n"))
	case <-time.After(edgeStartLimit):
		t.Fatalf("edge %s did not start:\n%s", p.node, strings.Join(p.lines(), "\n"))
	}
}

// read keeps the edge's log lines and passes on its "edge started" line.
func (p *edgeProcess) read(r io.Reader, started chan<- map[string]any) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.log = append(p.log, sc.Text())
		p.mu.Unlock()
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "edge started" {
			started <- line
		}
	}
	p.exited <- p.cmd.Wait()
}

func (p *edgeProcess) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// addr is where the edge listens: "websocket", "tcp" or "admin".
func (p *edgeProcess) addr(key string) string {
	s, _ := p.started[key].(string)
	return s
}

// metric is the value of an unlabelled counter or gauge on the edge's
// /metrics.
func (p *edgeProcess) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.addr("admin") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s on %s/metrics", name, p.addr("admin"))
	return ""
}

// start runs a process until the test ends, its output logged if the test
// fails; the channel is closed when it exits.
func start(t *testing.T, name string, args ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s %q:\n%s", filepath.Base(name), args, out.String())
		}
	})
	return cmd, exited
}

// lockedBuffer is a process's output, written by exec's copying goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePorts finds n consecutive loopback ports that are free, below the
// ephemeral range (32768 on): the routes must be known before the
// servers start.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000-n)
		var lns []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			_ = ln.Close()
		}
		if len(lns) == n {
			ports := make([]int, n)
			for i := range ports {
				ports[i] = base + i
			}
			return ports
		}
	}
	t.Fatal("no free ports")
	return nil
}

// waitFor waits until cond holds, at most waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, what, waitLimit, cond, func() string { return "" })
}

// waitWithin is waitFor with its own limit, and why (what the last try
// found) in its failure.
func waitWithin(t *testing.T, what string, limit time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v %s", what, limit, why())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
