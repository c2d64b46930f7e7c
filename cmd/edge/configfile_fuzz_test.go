package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzConfigFile: any config file is refused with a one-line usage error
// or gives a configuration that validates, never a panic; and the values a
// file loads, written back as a file of plain strings, load the same.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{"nats-url: [nats://a:4222, nats://b:4222]\nqueue-len: 7\n", "drain-timeout: 10s\nws-allowed-origins: https://a.example\n",
		"{\"queue-len\": 8, \"burst\": null}", "help: true\n", "config: other.yaml\n", "queue-len: {a: 1}\n", "nats-url: [[a]]\n",
		"nats-url: [a,b, 'c,d']\n", "a: &x [1]\nb: *x\n", "- 1\n", "queue-len: -1\n", "", "\t", "max-frame-size: 99999999999999999999\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		if len(content) > 1024 {
			return // the decoder's paths are all within reach of short files
		}
		res, err := loadConfigFile(strings.NewReader(content))
		if err != nil {
			return
		}
		values := res.(*fileResolver).values
		back, err := yaml.Marshal(values)
		if err != nil {
			t.Fatalf("values %q do not encode: %v", values, err)
		}
		again, err := loadConfigFile(strings.NewReader(string(back)))
		if err != nil || !equalValues(again.(*fileResolver).values, values) {
			t.Fatalf("values %q, written back as %q, load as %v, %v", values, back, again, err)
		}
		parseFile(t, filepath.Join(dir, "edge.yaml"), content)
	})
}

// parseFile runs the edge's command line on a config file of content: it
// is refused in one line, or its configuration validates.
func parseFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	o, _, ok := parse([]string{"--config", path}, io.Discard, &stderr)
	switch {
	case !ok && strings.Count(strings.TrimSuffix(stderr.String(), "\n"), "\n") > 0:
		t.Fatalf("refused in more than one line: %q", stderr.String())
	case ok && o.cfg.Validate() != nil:
		t.Fatalf("accepted a configuration that does not validate: %v", o.cfg.Validate())
	}
}

func equalValues(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
