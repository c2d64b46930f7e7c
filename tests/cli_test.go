package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

// cliRun is one run of a command-line tool: what it wrote where, and its
// exit status.
type cliRun struct {
	stdout, stderr string
	code           int
}

// runTool runs the binary name with args in a temporary folder, with a
// temporary HOME and no NATS_*, PUSHCTL_*, PUSHBENCH_*, PUSHFABRIC_* or PUSHHTTP_*
// variables but those in env.
func runTool(t *testing.T, env []string, name string, args ...string) cliRun {
	t.Helper()
	return runToolInput(t, env, "", name, args...)
}

// runToolInput is runTool with stdin as the tool's standard input.
func runToolInput(t *testing.T, env []string, stdin string, name string, args ...string) cliRun {
	t.Helper()
	cmd := exec.CommandContext(timeout(t), binary(t, name), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(toolEnv(t), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, strings.NewReader(stdin)
	err := cmd.Run()
	r := cliRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return r
}

// toolEnv is the environment with a temporary HOME and nats CLI
// configuration folder, and without the variables the tools read.
func toolEnv(t *testing.T) []string {
	home := t.TempDir()
	env := homeEnv(home)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "XDG_CONFIG_HOME", strings.HasPrefix(k, "NATS_"), strings.HasPrefix(k, "PUSHCTL_"),
			strings.HasPrefix(k, "PUSHBENCH_"), strings.HasPrefix(k, "PUSHFABRIC_"), strings.HasPrefix(k, "PUSHHTTP_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// withDLQ makes the dead-letter stream on s, connecting with opts.
func withDLQ(t *testing.T, s *server.Server, opts ...nats.Option) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, s, opts...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dlq.EnsureStream(timeout(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
}

// mustBeOneUsageLine checks r is a command-line mistake: exit status 2,
// nothing on stdout, one line on stderr holding each of want and pointing
// to --help.
func mustBeOneUsageLine(t *testing.T, what string, r cliRun, want ...string) {
	t.Helper()
	if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("%s: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", what, r.code, r.stdout, r.stderr)
	}
	for _, w := range append(want, "--help") {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: %q does not name %q", what, r.stderr, w)
		}
	}
}

// A flag after the positional arguments counts: pushctl push alice hi
// --priority low dead-letters a low push.
func TestPushctlFlagAfterArguments(t *testing.T) {
	s := natstest.Server(t)
	withDLQ(t, s)
	r := runTool(t, nil, "pushctl", "push", "alice", "hi", "--priority", "low", "--nats", s.ClientURL(), "--id", "p-low")
	if r.code != 1 || !strings.Contains(r.stdout, "dead: offline") {
		t.Fatalf("pushctl push alice hi --priority low: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	dls := deadLetters(t, s)
	if len(dls) != 1 || !strings.HasSuffix(dls[0].Subject, ".alice.low") {
		t.Fatalf("dead letters %+v; want one on ….alice.low", dls)
	}
}

// Every mistake on pushctl's command line is one line on stderr naming the
// flag or the argument, exit status 2; nothing is printed twice, and no
// usage buries it.
func TestPushctlUsageErrorsAreOneLine(t *testing.T) {
	for _, c := range []struct {
		what string
		args []string
		want []string
	}{
		{"unknown flag", []string{"push", "alice", "hi", "--bogus"}, []string{"--bogus", "pushctl push"}},
		{"unknown flag before the arguments", []string{"dlq", "ls", "--sesion", "x"}, []string{"--sesion"}},
		{"missing argument", []string{"push", "alice"}, []string{"<payload>"}},
		{"missing argument of listen", []string{"listen"}, []string{"<session>"}},
		{"refused value", []string{"push", "alice", "hi", "--priority", "urgent"}, []string{"--priority", "urgent"}},
		{"refused filter", []string{"dlq", "ls", "--since", "yesterday"}, []string{"--since", "yesterday"}},
		{"bad duration", []string{"top", "--interval", "soon"}, []string{"--interval"}},
		{"no command", nil, []string{"push"}},
		{"unknown command", []string{"pusj"}, []string{"pusj"}},
	} {
		mustBeOneUsageLine(t, c.what, runTool(t, nil, "pushctl", c.args...), c.want...)
	}
}

// --help goes to stdout, exit status 0, and lists each flag with its
// environment variable; --version prints the build's version.
func TestPushctlHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"push", "--help"}, {"dlq", "ls", "--help"}, {"push", "alice", "-h"}} {
		r := runTool(t, nil, "pushctl", args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage: pushctl") {
			t.Fatalf("pushctl %q: exit %d, stderr %q:\n%s", args, r.code, r.stderr, r.stdout)
		}
	}
	push := runTool(t, nil, "pushctl", "push", "--help").stdout
	for _, w := range []string{"--priority", "$PUSHCTL_PRIORITY", "--nats=URLS", "$PUSHCTL_NATS,", "$NATS_URL", "$NATS_CONTEXT", "--nats-token", "--nats-tls-ca"} {
		if !strings.Contains(push, w) {
			t.Errorf("pushctl push --help lacks %q:\n%s", w, push)
		}
	}
	if ls := runTool(t, nil, "pushctl", "dlq", "ls", "--help").stdout; !strings.Contains(ls, "$PUSHCTL_DLQ_PRIORITY") {
		t.Errorf("pushctl dlq ls --help lacks PUSHCTL_DLQ_PRIORITY:\n%s", ls)
	}
	r := runTool(t, nil, "pushctl", "--version")
	if r.code != 0 || strings.TrimSpace(r.stdout) != version.Current().String() {
		t.Errorf("pushctl --version: exit %d, %q; want %q", r.code, r.stdout, version.Current().String())
	}
}

// pushctl reads its own variables: PUSHCTL_NATS and the standard NATS_URL
// say where NATS is; the old shared PUSHFABRIC_* names mean nothing to it,
// and a PUSHCTL_PRIORITY for pushes does not filter dead letters.
func TestPushctlEnvironment(t *testing.T) {
	s := natstest.Server(t)
	withDLQ(t, s)
	for _, env := range [][]string{{"PUSHCTL_NATS=" + s.ClientURL()}, {"NATS_URL=" + s.ClientURL()},
		{"PUSHCTL_NATS=" + s.ClientURL(), "NATS_URL=nats://127.0.0.1:1"}} {
		if r := runTool(t, env, "pushctl", "push", "alice", "hi"); r.code != 1 || !strings.Contains(r.stdout, "dead: offline") {
			t.Fatalf("pushctl push with %q: exit %d:\n%s%s", env, r.code, r.stdout, r.stderr)
		}
	}
	env := []string{"NATS_URL=" + s.ClientURL(), "PUSHCTL_PRIORITY=low", "PUSHFABRIC_PRIORITY=low", "PUSHFABRIC_NATS=nats://127.0.0.1:1"}
	if r := runTool(t, env, "pushctl", "dlq", "ls"); r.code != 0 || !strings.Contains(r.stderr, "3 dead letter(s)") {
		t.Fatalf("pushctl dlq ls with %q: exit %d:\n%s%s", env, r.code, r.stdout, r.stderr)
	}
	env = append(env, "PUSHCTL_DLQ_PRIORITY=low")
	if r := runTool(t, env, "pushctl", "dlq", "ls"); r.code != 0 || !strings.Contains(r.stderr, "0 dead letter(s)") {
		t.Fatalf("pushctl dlq ls with %q: exit %d:\n%s%s", env, r.code, r.stdout, r.stderr)
	}
}

// homeEnv makes home the tools' home folder and the nats CLI's
// configuration folder's parent (which the nats CLI, and so pushctl, takes
// from XDG_CONFIG_HOME or the user database, never from HOME).
func homeEnv(home string) []string {
	return []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
}

// writeNATSContext writes the nats CLI context name into home and, with
// selected, selects it.
func writeNATSContext(t *testing.T, home, name string, ctx map[string]string, selected bool) {
	t.Helper()
	dir := filepath.Join(home, ".config", "nats")
	if err := os.MkdirAll(filepath.Join(dir, "context"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "context", name+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if selected {
		if err := os.WriteFile(filepath.Join(dir, "context.txt"), []byte(name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// pushctl reaches a NATS that wants a user and password through a nats CLI
// context (the selected one, or one named by --context or NATS_CONTEXT),
// or through --nats-user and --nats-password-file; a flag wins over the
// context.
func TestPushctlNATSContextAndCredentials(t *testing.T) {
	s := serverWithUser(t, "u", "secretpw")
	withDLQ(t, s, nats.UserInfo("u", "secretpw"))
	home := t.TempDir()
	writeNATSContext(t, home, "good", map[string]string{"url": s.ClientURL(), "user": "u", "password": "secretpw"}, true)
	writeNATSContext(t, home, "bad", map[string]string{"url": s.ClientURL(), "user": "u", "password": "wrong"}, false)
	pwFile := filepath.Join(home, "pw")
	if err := os.WriteFile(pwFile, []byte("secretpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		env  []string
		args []string
		ok   bool
	}{
		{"the selected context", nil, nil, true},
		{"--context bad", nil, []string{"--context", "bad"}, false},
		{"NATS_CONTEXT=bad", []string{"NATS_CONTEXT=bad"}, nil, false},
		{"--nats-user over the bad context", []string{"NATS_CONTEXT=bad"}, []string{"--nats-user", "u", "--nats-password-file", pwFile}, true},
		{"--context missing", nil, []string{"--context", "missing"}, false},
	} {
		r := runTool(t, append(homeEnv(home), c.env...), "pushctl", append([]string{"push", "alice", "hi"}, c.args...)...)
		if got := r.code == 1 && strings.Contains(r.stdout, "dead: offline"); got != c.ok {
			t.Errorf("%s: exit %d:\n%s%s", c.what, r.code, r.stdout, r.stderr)
		}
	}
}

// A context saved with the stock nats CLI is the one pushctl reads, by
// name (--context) or selected (nats context select), as docs/running.md
// says: both find the nats CLI's folder the same way.
func TestPushctlReadsContextsTheNATSCLISaved(t *testing.T) {
	s := serverWithUser(t, "u", "secretpw")
	withDLQ(t, s, nats.UserInfo("u", "secretpw"))
	env := toolEnv(t)
	natsCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command(natstest.CLI(t), args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nats %q: %v\n%s", args, err, out)
		}
	}
	natsCmd("context", "save", "prod", "--server", s.ClientURL(), "--user", "u", "--password", "secretpw")
	if r := runTool(t, env, "pushctl", "dlq", "ls", "--context", "prod"); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "0 dead letter(s)") {
		t.Fatalf("pushctl dlq ls --context prod: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	natsCmd("context", "select", "prod")
	if r := runTool(t, env, "pushctl", "push", "alice", "hi"); r.code != 1 || !strings.Contains(r.stdout, "dead: offline") {
		t.Fatalf("pushctl push with prod selected: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// pushctl completion prints a script that completes pushctl's commands and
// flags in bash.
func TestPushctlCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := runTool(t, nil, "pushctl", "completion", sh); r.code != 0 || !strings.Contains(r.stdout, "pushctl __complete") {
			t.Fatalf("pushctl completion %s: exit %d:\n%s%s", sh, r.code, r.stdout, r.stderr)
		}
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for words, want := range map[string]string{"dlq re": "replay", "dlq ls --rea": "--reason", "pu": "push", "dlq pu": "purge"} {
		script := `source <(pushctl completion bash); COMP_WORDS=(pushctl ` + words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _pushctl; echo "${COMPREPLY[*]}"`
		cmd := exec.CommandContext(timeout(t), "bash", "-c", script)
		cmd.Env = append(toolEnv(t), "PATH="+filepath.Dir(binary(t, "pushctl"))+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
		}
		for _, w := range strings.Fields(want) {
			if !strings.Contains(string(out), w) {
				t.Errorf("bash completes %q to %q; want %q among them", words, out, w)
			}
		}
	}
}

// pushbench's command line: help on stdout, its own PUSHBENCH_* variables
// (PUSHCTL_* and PUSHFABRIC_* mean nothing to it), one line for a mistake.
func TestPushbenchCommandLine(t *testing.T) {
	r := runTool(t, nil, "pushbench", "load", "--help")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "$PUSHBENCH_SESSIONS") {
		t.Fatalf("pushbench load --help: exit %d, stderr %q:\n%s", r.code, r.stderr, r.stdout)
	}
	mustBeOneUsageLine(t, "PUSHBENCH_SESSIONS=0", runTool(t, []string{"PUSHBENCH_SESSIONS=0", "PUSHFABRIC_SESSIONS=5"}, "pushbench", "load"), "--sessions")
	mustBeOneUsageLine(t, "unknown flag", runTool(t, nil, "pushbench", "scale", "--sesions", "5"), "--sesions")
	mustBeOneUsageLine(t, "no command", runTool(t, nil, "pushbench"), "load")
}

// The edge's command line: help on stdout with each PUSHFABRIC_ variable,
// --version, and one line with exit status 2 for an unknown flag, a stray
// argument or a configuration refused before anything starts (the
// listen address's missing port named).
func TestEdgeCommandLine(t *testing.T) {
	r := runTool(t, nil, "edge", "--help")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "$PUSHFABRIC_NATS_URL") || !strings.Contains(r.stdout, "$PUSHFABRIC_WS_ALLOWED_ORIGINS") {
		t.Fatalf("edge --help: exit %d, stderr %q:\n%s", r.code, r.stderr, r.stdout)
	}
	if r := runTool(t, nil, "edge", "--version"); r.code != 0 || strings.TrimSpace(r.stdout) != version.Current().String() {
		t.Errorf("edge --version: exit %d, %q", r.code, r.stdout)
	}
	mustBeOneUsageLine(t, "unknown flag", runTool(t, nil, "edge", "--bogus"), "--bogus")
	mustBeOneUsageLine(t, "stray argument", runTool(t, nil, "edge", "serve"), "serve")
	mustBeOneUsageLine(t, "no port", runTool(t, nil, "edge", "--ws-listen", "nonsense"), "missing port")
	mustBeOneUsageLine(t, "from the environment", runTool(t, []string{"PUSHFABRIC_QUEUE_LEN=-1"}, "edge"), "--queue-len must be positive")
}

// pushctl top --once exits 1 when a node is down: a script can tell.
func TestPushctlTopOnceDownExits1(t *testing.T) {
	closed := natstest.FreePort(t)
	r := runTool(t, nil, "pushctl", "top", "--once", "--interval", "10ms", "--admin", fmt.Sprintf("http://127.0.0.1:%d", closed))
	if r.code != 1 || !regexp.MustCompile(`(?m)^\s+\?\s+DOWN\s+http://127\.0\.0\.1:\d+$`).MatchString(r.stdout) {
		t.Fatalf("pushctl top --once with its node down: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// pushctl reaches a NATS that wants a token: from --nats-token, from
// PUSHCTL_NATS_TOKEN, or from the token of a nats CLI context.
func TestPushctlNATSToken(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Authorization = "secrettoken"
	s := natstest.StartWith(t, opts)
	withDLQ(t, s, nats.Token("secrettoken"))
	home := t.TempDir()
	writeNATSContext(t, home, "tok", map[string]string{"url": s.ClientURL(), "token": "secrettoken"}, false)
	url := "--nats=" + s.ClientURL()
	for _, c := range []struct {
		what string
		env  []string
		args []string
		ok   bool
	}{
		{"no token", nil, []string{url}, false},
		{"--nats-token", nil, []string{url, "--nats-token", "secrettoken"}, true},
		{"PUSHCTL_NATS_TOKEN", []string{"PUSHCTL_NATS_TOKEN=secrettoken"}, []string{url}, true},
		{"the context's token", []string{"NATS_CONTEXT=tok"}, nil, true},
	} {
		r := runTool(t, append(homeEnv(home), c.env...), "pushctl", append([]string{"push", "alice", "hi"}, c.args...)...)
		if got := r.code == 1 && strings.Contains(r.stdout, "dead: offline"); got != c.ok {
			t.Errorf("%s: exit %d:\n%s%s", c.what, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "secrettoken") {
			t.Errorf("%s: pushctl printed the token:\n%s%s", c.what, r.stdout, r.stderr)
		}
	}
}

// Every value pushctl refuses is refused before it connects, in one line
// with exit status 2: a name no edge accepts (a session, a method, a
// filter), a missing key to mint with, an --addr client.Dial cannot dial,
// a sequence no dead letter has, a purge it cannot ask about, and an
// argument like -1 read as a flag.
func TestPushctlRefusedValuesAreUsageLines(t *testing.T) {
	bad := "al ice"
	for _, c := range []struct {
		what string
		env  []string
		args []string
		want []string
	}{
		{"push's session", nil, []string{"push", bad, "hi"}, []string{`session "al ice"`, "want 1-128"}},
		{"listen's session", nil, []string{"listen", bad}, []string{`session "al ice"`}},
		{"request's method", nil, []string{"request", "a.b"}, []string{`method "a.b"`}},
		{"request's --session", nil, []string{"request", "--session", bad, "echo"}, []string{`--session "al ice"`}},
		{"token's session", nil, []string{"token", "--secret-file", "s", bad}, []string{`session "al ice"`}},
		{"a dlq filter's session", nil, []string{"dlq", "replay", "--session", "a.b"}, []string{`session "a.b"`}},
		{"token without a key", nil, []string{"token", "alice"}, []string{"pushctl token", "--secret-file", "--key-file"}},
		{"--addr without a scheme", []string{"PUSHCTL_ADDR=127.0.0.1:8080"}, []string{"listen", "alice"},
			[]string{"--addr 127.0.0.1:8080: want ws://host:port/ or tcp://host:port (wss://, tls:// over TLS)"}},
		{"--ca that is not there", nil, []string{"listen", "--addr", "wss://localhost:8443/", "--ca", "/nonexistent/ca.pem", "alice"}, []string{"--ca: open /nonexistent/ca.pem"}},
		{"--addr without a port", nil, []string{"request", "--addr", "tcp://localhost", "echo"}, []string{"--addr tcp://localhost"}},
		{"sequence 0", nil, []string{"dlq", "show", "0"}, []string{"sequence 0"}},
		{"an empty session", nil, []string{"push", "", "hi"}, []string{`session ""`}},
		{"still a missing argument", nil, []string{"token", "--secret-file", "s"}, []string{"missing argument <session>"}},
		{"still a missing method", nil, []string{"request"}, []string{"missing argument <method>"}},
		{"still a missing dead letter", nil, []string{"dlq", "show"}, []string{"missing argument <sequence | push id>"}},
		{"purge without a terminal", nil, []string{"dlq", "purge"}, []string{"refusing to purge without --yes when not at a terminal"}},
		{"a negative number", nil, []string{"push", "q", "-1"},
			[]string{"-1 is read as a flag: put -- before an argument that starts with - (pushctl push q -- -1)"}},
		{"a negative number after a flag's value", nil, []string{"push", "--nats-token", "secrettoken", "--json", "q", "-2.5"},
			[]string{"(pushctl push q -- -2.5)"}},
	} {
		r := runTool(t, c.env, "pushctl", c.args...)
		mustBeOneUsageLine(t, c.what, r, c.want...)
		if strings.Contains(r.stderr, "secrettoken") {
			t.Errorf("%s: pushctl printed the token: %q", c.what, r.stderr)
		}
	}
}

// pushctl dlq show says what it looked for and did not find, exit status
// 1 (the command ran; nothing is there), by push id and by sequence.
func TestPushctlDLQShowNotFound(t *testing.T) {
	s := natstest.Server(t)
	withDLQ(t, s)
	for which, want := range map[string]string{"c": "pushctl dlq show: no dead letter c", "999": "pushctl dlq show: no dead letter with sequence 999"} {
		r := runTool(t, nil, "pushctl", "dlq", "show", which, "--nats", s.ClientURL())
		if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "API error") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("pushctl dlq show %s: exit %d, stderr %q; want exit 1 and %q", which, r.code, r.stderr, want)
		}
	}
}

// pushctl listen ended by the edge exits 0 for shutdown (the node
// stopped) and 1 for replaced (another connection took the session), as
// its help says.
func TestPushctlListenExitStatus(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "n1")
	n := startEdge(t, cfg)
	listen := func() *process {
		p := start(t, t.TempDir(), toolEnv(t), binary(t, "pushctl"), "listen", "--addr", n.ws(), "--secret-file", cfg.JWTSecretFile, "alice")
		p.waitFor(t, "listening as session")
		return p
	}
	exitCode := func(p *process) int {
		t.Helper()
		select {
		case <-p.exited:
		case <-timeout(t).Done():
			t.Fatalf("pushctl listen did not exit:\n%s", p.output())
		}
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return ee.ExitCode()
		}
		return 0
	}
	p := listen()
	dial(t, n.ws(), "alice", client.Options{})
	if code := exitCode(p); code != 1 || !strings.Contains(p.output(), "replaced") {
		t.Errorf("pushctl listen replaced: exit %d:\n%s", code, p.output())
	}
	p = listen()
	n.shutdown(t)
	if code := exitCode(p); code != 0 || !strings.Contains(p.output(), "shutdown") {
		t.Errorf("pushctl listen at the node's shutdown: exit %d:\n%s", code, p.output())
	}
	help := runTool(t, nil, "pushctl", "listen", "--help").stdout
	if !strings.Contains(help, "replaced included") {
		t.Errorf("pushctl listen --help does not give the exit status of a replaced listener:\n%s", help)
	}
}

// The errors a new user meets first say what to do next, on the same
// line: NATS not running (naming the URL tried), NATS wanting
// credentials, and an edge wanting a token when none was given.
func TestPushctlErrorsSayWhatToDo(t *testing.T) {
	closed := fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))
	opts := natstest.Options(t, "n1")
	opts.Authorization = "secrettoken"
	locked := natstest.StartWith(t, opts)
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "n1"))
	for _, c := range []struct {
		what string
		args []string
		want []string
	}{
		{"no NATS", []string{"dlq", "ls", "--nats", closed}, []string{closed, "no servers available", "(is the edge (make run) or NATS running? --nats or NATS_URL says where)"}},
		{"NATS wants credentials", []string{"push", "alice", "hi", "--nats", locked.ClientURL()},
			[]string{"uthorization", "(this NATS wants credentials: --nats-user with --nats-password-file, --nats-creds, --nats-nkey, --nats-token or --context)"}},
		{"the edge wants a token", []string{"listen", "--addr", n.ws(), "alice"},
			[]string{"missing token", "(give --secret-file data/jwt-secret as make run made it, --key-file or --token)"}},
		{"the edge wants a token for a request", []string{"request", "--addr", n.tcp(), "echo"}, []string{"missing token", "--secret-file data/jwt-secret"}},
	} {
		r := runTool(t, nil, "pushctl", c.args...)
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one line", c.what, r.code, r.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: %q does not say %q", c.what, r.stderr, w)
			}
		}
	}
}

// pushctl request --json gives a priority to no response frame: only
// pushes have one.
func TestPushctlRequestJSONHasNoPriority(t *testing.T) {
	_, n, nc := requestNode(t, nil)
	respond(t, nc, "echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("echo: "), m.Data...)) })
	r := runTool(t, nil, "pushctl", "request", "--addr", n.ws(), "--token", mint(t, "bob"), "--json", "echo", "hi")
	if r.code != 0 || !strings.Contains(r.stdout, `"payload":"echo: hi"`) || strings.Contains(r.stdout, "priority") {
		t.Fatalf("pushctl request --json: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// pushctl dlq replay exits 0 when the dead letters it did not replay are
// only still offline (they stay, for later), as its help says; and every
// dead-letter reason is in the filter's help, unconfirmed included.
func TestPushctlReplayOfflineExits0AndHelpSaysSo(t *testing.T) {
	s := natstest.Server(t)
	withDLQ(t, s)
	if r := runTool(t, nil, "pushctl", "push", "alice", "hi", "--nats", s.ClientURL()); r.code != 1 || !strings.Contains(r.stdout, "dead: offline") {
		t.Fatalf("pushctl push alice hi: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runTool(t, nil, "pushctl", "dlq", "replay", "--nats", s.ClientURL())
	if r.code != 0 || !strings.Contains(r.stdout, "still offline 1") || len(deadLetters(t, s)) != 1 {
		t.Fatalf("pushctl dlq replay with alice offline: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	help := runTool(t, nil, "pushctl", "dlq", "replay", "--help").stdout
	for _, w := range []string{"0 when every selected dead letter was replayed or is still offline", "1 if any failed or was refused"} {
		if !strings.Contains(strings.Join(strings.Fields(help), " "), w) {
			t.Errorf("pushctl dlq replay --help lacks %q:\n%s", w, help)
		}
	}
	purge := strings.Join(strings.Fields(runTool(t, nil, "pushctl", "dlq", "purge", "--help").stdout), " ")
	for _, reason := range push.Reasons {
		if !strings.Contains(purge, string(reason)) {
			t.Errorf("pushctl dlq purge --help lacks the reason %s:\n%s", reason, purge)
		}
	}
}

// An edge that cannot start says what to do about it, as pushctl does,
// with the edge's own flags.
func TestEdgeStartErrorsSayWhatToDo(t *testing.T) {
	closed := fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))
	opts := natstest.Options(t, "n1")
	opts.Authorization = "secrettoken"
	locked := natstest.StartWith(t, opts)
	for _, c := range []struct {
		what string
		url  string
		want []string
	}{
		{"no NATS", closed, []string{"no servers available", "(is NATS running at --nats-url? --nats-connect-retry starts the node anyway"}},
		{"NATS wants credentials", locked.ClientURL(), []string{"uthorization", "(this NATS wants credentials: --nats-nkey, --nats-creds"}},
	} {
		r := runTool(t, nil, "edge", "--nats-url", c.url, "--node", "n1", "--admin-listen", "127.0.0.1:0")
		if r.code != 1 {
			t.Errorf("%s: exit %d; want 1:\n%s", c.what, r.code, r.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: %q does not say %q", c.what, r.stderr, w)
			}
		}
	}
}

// SIGTERM stops an edge that is still starting at once, with status 0:
// here its NATS user may not use the JetStream API, so making the
// dead-letter stream waits for answers that never come.
func TestEdgeStopsWhileStarting(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Users = []*server.User{{Username: "edge", Password: "pw", Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Deny: []string{"$JS.API.>"}}}}}
	s := natstest.StartWith(t, opts)
	dir := t.TempDir()
	putFile(t, filepath.Join(dir, "pw"), []byte("pw"))
	edge := start(t, dir, nil, binary(t, "edge"), "--nats-url", s.ClientURL(), "--nats-user", "edge",
		"--nats-password-file", "pw", "--node", "n1", "--log-format", "json", "--admin-listen", "127.0.0.1:0")
	edge.waitFor(t, "nats permission violation")
	if err := edge.interrupt(t, syscall.SIGTERM); err != nil {
		t.Fatalf("edge stopped while starting: %v; want status 0", err)
	}
	if out := edge.output(); !strings.Contains(out, `"msg":"stopped while starting"`) || strings.Contains(out, "edge started") {
		t.Fatalf("output:\n%s", out)
	}
}

// pushctl with a NATS user whose replies come under an inbox prefix of
// its own, run without that prefix, says so at once: NATS refuses its
// reply subscription, and every request would wait out its timeout.
func TestPushctlSaysItsInboxWasRefused(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Users = []*server.User{{Username: "producer", Password: "pw", Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"push.*.high", "push.*.low", "dlq.push.offline.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_producer.>"}}}},
		{Username: "admin", Password: "pw"}}
	s := natstest.StartWith(t, opts)
	withDLQ(t, s, nats.UserInfo("admin", "pw"))
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	putFile(t, pw, []byte("pw"))
	args := []string{"push", "alice", "hi", "--nats", s.ClientURL(), "--nats-user", "producer", "--nats-password-file", pw, "--timeout", "1m"}
	r := runTool(t, nil, "pushctl", args...)
	if r.code != 1 || !strings.Contains(r.stderr, "Subscription to \"_INBOX.") || !strings.Contains(r.stderr, "--nats-inbox-prefix") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and the inbox prefix named", r.code, r.stderr)
	}
	r = runTool(t, nil, "pushctl", append(args, "--nats-inbox-prefix", "_INBOX_producer")...)
	if r.code != 1 || !strings.Contains(r.stdout, "dead: offline") {
		t.Fatalf("with the prefix: exit %d, stdout %q, stderr %q; want the push parked offline", r.code, r.stdout, r.stderr)
	}
}
