package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// parseArgs is parse with its error output.
func parseArgs(args ...string) (*options, string) {
	var stderr strings.Builder
	o, _, _ := parse(args, io.Discard, &stderr)
	return o, stderr.String()
}

// Every flag a file may set gives the node the same configuration, or the
// same refusal, from the file as from the command line.
func TestConfigFileEqualsFlags(t *testing.T) {
	var f edgeFlags
	for _, cf := range f.configFlags() {
		value := map[reflect.Kind]string{reflect.String: "x7", reflect.Bool: "true", reflect.Int: "7", reflect.Int64: "7",
			reflect.Float64: "7.5", reflect.Slice: "https://a.example"}[cf.value.Kind()]
		if cf.value.Type() == reflect.TypeFor[time.Duration]() {
			value = "7s"
		}
		fromFlag, flagErr := parseArgs(cf.flag + "=" + value)
		fromFile, fileErr := parseArgs("--config", writeConfig(t, strings.TrimPrefix(cf.flag, "--")+": "+value+"\n"))
		if flagErr != fileErr || (fromFlag == nil) != (fromFile == nil) || fromFlag != nil && !reflect.DeepEqual(fromFlag.cfg, fromFile.cfg) {
			t.Errorf("%s %s: from the file %q, from the flag %q", cf.flag, value, fileErr, flagErr)
		}
	}
}

// A list is a YAML list or a comma-separated string; the command line wins
// over the environment, which wins over the file.
func TestConfigFileListsAndPrecedence(t *testing.T) {
	file := writeConfig(t, "nats-url: [nats://a:4222, nats://b:4222]\nqueue-len: 7\nburst: 3\nws-allowed-origins: https://a.example,https://b.example\n")
	t.Setenv("PUSHFABRIC_BURST", "4")
	o, msg := parseArgs("--config", file, "--queue-len", "8")
	if o == nil {
		t.Fatal(msg)
	}
	c := o.cfg
	if strings.Join(c.Bus.URLs, " ") != "nats://a:4222 nats://b:4222" || len(c.Edge.WSAllowedOrigins) != 2 {
		t.Errorf("lists: URLs %q, origins %q", c.Bus.URLs, c.Edge.WSAllowedOrigins)
	}
	if c.Edge.QueueLen != 8 || c.Edge.Burst != 4 {
		t.Errorf("queue-len %d (file 7, flag 8), burst %d (file 3, environment 4)", c.Edge.QueueLen, c.Edge.Burst)
	}
	t.Setenv("PUSHFABRIC_CONFIG", file)
	if o, msg := parseArgs(); o == nil || o.cfg.Edge.QueueLen != 7 {
		t.Errorf("the file from PUSHFABRIC_CONFIG: %v %q", o, msg)
	}
}

// A file the edge cannot use is refused in one line, exit 2, naming what
// is wrong: a key that is no flag, a flag about the command line, a value
// that is a mapping, YAML that does not parse, a file that is not there.
func TestConfigFileMistakes(t *testing.T) {
	for _, c := range []struct{ content, want string }{
		{"queu-len: 3\n", `"queu-len" is not a flag of edge`},
		{"version: true\n", "--version cannot be set in a config file"},
		{"config: other.yaml\n", "--config cannot be set in a config file"},
		{"queue-len:\n  a: 1\n", "queue-len: want a value or a list of values, not a mapping"},
		{"ws-allowed-origins: [https://a.example, [x]]\n", "ws-allowed-origins: want a list of plain values"},
		{"queue-len: [1\n", "config file: yaml: "},
		{"drain-timeout: 5\n", "--drain-timeout: expected duration"},
	} {
		var stderr strings.Builder
		_, code, ok := parse([]string{"--config", writeConfig(t, c.content)}, io.Discard, &stderr)
		if msg := stderr.String(); ok || code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.want) {
			t.Errorf("%q: exit %d, %q; want one line saying %q", c.content, code, msg, c.want)
		}
	}
	var stderr strings.Builder
	if _, code, _ := parse([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, io.Discard, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "no such file") {
		t.Errorf("a missing file: exit %d, %q", code, stderr.String())
	}
	if o, msg := parseArgs("--config", writeConfig(t, "")); o == nil {
		t.Errorf("an empty file: %q", msg)
	}
}

// The config file docs/running.md shows is one the edge takes.
func TestRunningMdConfigFile(t *testing.T) {
	doc, err := os.ReadFile("../../docs/running.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || !strings.Contains(block, "nats-url:") {
		t.Fatalf("docs/running.md shows no config file: %q", block)
	}
	var f edgeFlags
	p, err := parser(&f, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"--config", writeConfig(t, block)}); err != nil {
		t.Fatalf("docs/running.md's config file: %v", err)
	}
	if f.NATSURL != "nats://n1:4222,nats://n2:4222,nats://n3:4222" || f.DrainTimeout != 10*time.Second || len(f.WSAllowedOrigins) != 1 {
		t.Fatalf("docs/running.md's config file gives %+v", f)
	}
}
