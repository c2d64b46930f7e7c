package check

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"
)

// root is the repository, from this module's folder.
const root = "../.."

// The edge binary, built once for the tests that ask it.
var (
	buildOnce sync.Once
	edgeBin   string
	buildErr  error
)

// edgeBinary builds cmd/edge from this repository.
func edgeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pushfabric-check-")
		if err != nil {
			buildErr = err
			return
		}
		edgeBin = filepath.Join(dir, "edge")
		cmd := exec.Command("go", "build", "-o", edgeBin, "./cmd/edge")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/edge: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return edgeBin
}

// edgeHelp is what edge --help says: its flags with their defaults, and
// the environment variables it reads.
type edgeHelp struct {
	defaults map[string]string // flag name → the default shown, "" for none
	envs     map[string]bool
}

var (
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)(?:=("[^"]*"|\S+))?`)
	helpEnv  = regexp.MustCompile(`\$(PUSHFABRIC_[A-Z0-9_]+)`)
)

// help runs edge --help.
func help(t *testing.T) edgeHelp {
	t.Helper()
	out, err := exec.Command(edgeBinary(t), "--help").Output()
	if err != nil {
		t.Fatalf("edge --help: %v", err)
	}
	h := edgeHelp{defaults: map[string]string{}, envs: map[string]bool{}}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		h.defaults[m[1]] = strings.Trim(m[2], `"`)
	}
	for _, m := range helpEnv.FindAllStringSubmatch(string(out), -1) {
		h.envs[m[1]] = true
	}
	if len(h.defaults) < 20 || !h.envs["PUSHFABRIC_NODE"] {
		t.Fatalf("edge --help: found %d flags, env %v: the format changed?\n%s", len(h.defaults), h.envs, out)
	}
	return h
}

// duration is the value of a duration flag in a config, else its default.
func (h edgeHelp) duration(t *testing.T, cfg map[string]any, flag string) time.Duration {
	t.Helper()
	s, ok := cfg[flag].(string)
	if !ok {
		s = h.defaults[flag]
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("--%s: %v", flag, err)
	}
	return d
}

// stopMargin is cmd/edge's stopMargin: the time the binary gives itself
// after --drain-delay and --drain-timeout to write dead letters and drain
// NATS, and again after the node has stopped to flush traces.
func stopMargin(t *testing.T) time.Duration {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "cmd/edge/main.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`const stopMargin = (\d+) \* time\.Second`).FindSubmatch(src)
	if m == nil {
		t.Fatal("cmd/edge/main.go: no const stopMargin = N * time.Second")
	}
	d, _ := time.ParseDuration(string(m[1]) + "s")
	return d
}

// stopDeadline is the longest a SIGTERM'd edge with cfg takes to exit:
// drain delay, drain timeout and the stop margin, then the traces' flush.
func (h edgeHelp) stopDeadline(t *testing.T, cfg map[string]any) time.Duration {
	t.Helper()
	return h.duration(t, cfg, "drain-delay") + h.duration(t, cfg, "drain-timeout") + 2*stopMargin(t)
}

// readEdgeConfig reads an edge config file and checks that the edge takes
// it: each key a flag of edge --help that a file may set, and the whole
// file past the edge's own checks (see acceptConfig).
func readEdgeConfig(t *testing.T, h edgeHelp, path string) map[string]any {
	t.Helper()
	var cfg map[string]any
	readYAML(t, path, &cfg)
	for k := range cfg {
		if _, ok := h.defaults[k]; !ok || k == "help" || k == "version" || k == "config" {
			t.Errorf("%s: %q is not a flag edge --help lists for a config file", path, k)
		}
	}
	acceptConfig(t, path, cfg)
	checkInboxPrefix(t, path, cfg)
	return cfg
}

// acceptConfig runs the edge with the config file: it must pass every
// check the edge makes before it starts anything (a refused configuration
// exits 2) and fail only where it connects to NATS. The files the config
// names are replaced through the environment (which wins over the file) by
// real ones of the same kind, NATS by a port nothing listens on, and the
// listeners by loopback ones on port 0.
func acceptConfig(t *testing.T, path string, cfg map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // it fails at once
	defer cancel()
	cmd := exec.CommandContext(ctx, edgeBinary(t), "--config", path, "--log-format", "json")
	cmd.Env = append(os.Environ(), standIns(t, cfg)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "connect to nats") {
		t.Errorf("edge --config %s: %v; want exit status 1 at connecting to NATS:\n%s", path, err, out)
	}
}

// standIns is the environment acceptConfig runs the edge in.
func standIns(t *testing.T, cfg map[string]any) []string {
	t.Helper()
	env := []string{"PUSHFABRIC_NATS_URL=nats://127.0.0.1:1", "PUSHFABRIC_NATS_CONNECT_RETRY=false",
		"PUSHFABRIC_WS_LISTEN=127.0.0.1:0", "PUSHFABRIC_TCP_LISTEN=127.0.0.1:0", "PUSHFABRIC_ADMIN_LISTEN=127.0.0.1:0"}
	files := map[string]func(*testing.T) []byte{
		"nats-nkey": natsSeed, "jwt-secret-file": jwtSecret, "jwt-public-key-file": jwtPublicKey,
	}
	for flag, content := range files {
		if _, ok := cfg[flag]; !ok {
			continue
		}
		path := filepath.Join(t.TempDir(), flag)
		if err := os.WriteFile(path, content(t), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "PUSHFABRIC_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))+"="+path)
	}
	return env
}

func natsSeed(t *testing.T) []byte {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

func jwtSecret(*testing.T) []byte {
	return []byte(rand.Text() + rand.Text())
}

func jwtPublicKey(t *testing.T) []byte {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// readYAML decodes the YAML file at path into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// port is the port of a listen address such as ":8080".
func port(t *testing.T, addr any) string {
	t.Helper()
	s, _ := addr.(string)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		t.Fatalf("listen address %v has no port", addr)
	}
	return s[i+1:]
}

// listenPorts is the WebSocket, TCP and admin ports of an edge config.
func listenPorts(t *testing.T, cfg map[string]any) []string {
	t.Helper()
	return []string{port(t, cfg["ws-listen"]), port(t, cfg["tcp-listen"]), port(t, cfg["admin-listen"])}
}

// goModVersion is the version go.mod requires of module, or its go line
// for "go".
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + ` v?(\S+)`)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod: no %s", module)
	}
	return string(m[1])
}
