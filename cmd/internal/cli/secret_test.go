package cli

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func secretFlags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	token := new(string)
	SecretVar(fs, token, "nats-token", "a `token`")
	fs.String("nats-url", "", "")
	fs.Bool("pprof", false, "")
	return fs, token
}

func TestRedactArgs(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"edge", "--nats-token", "secrettoken", "--pprof"}, []string{"edge", "--nats-token", "[REDACTED]", "--pprof"}},
		{[]string{"edge", "-nats-token=secrettoken"}, []string{"edge", "-nats-token=[REDACTED]"}},
		{[]string{"edge", "--nats-token=secret=token"}, []string{"edge", "--nats-token=[REDACTED]"}},
		{[]string{"edge", "--nats-token", "-secrettoken"}, []string{"edge", "--nats-token", "[REDACTED]"}},
		{[]string{"edge", "--pprof", "--nats-url", "nats://u:secretpw@n1", "--nats-token"}, []string{"edge", "--pprof", "--nats-url", "nats://[REDACTED]@n1", "--nats-token"}},
		{[]string{"edge", "--nats-url=nats://secrettoken@n1"}, []string{"edge", "--nats-url=nats://[REDACTED]@n1"}},
		{[]string{"edge", "--nats-url", "--nats-token", "secrettoken"}, []string{"edge", "--nats-url", "--nats-token", "[REDACTED]"}}, // shows less than it might
		{[]string{"edge", "nats-token", "x"}, []string{"edge", "nats-token", "x"}},
	} {
		fs, _ := secretFlags()
		in := slices.Clone(c.in)
		if got := RedactArgs(fs, in); !slices.Equal(got, c.want) {
			t.Errorf("RedactArgs(%q) = %q; want %q", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("RedactArgs(%q) changed its argument to %q", c.in, in)
		}
	}
}

// A SecretVar flag sets its variable like a string flag and never shows
// its value, in --help or through its flag.Value.
func TestSecretVar(t *testing.T) {
	fs, token := secretFlags()
	if err := fs.Parse([]string{"--nats-token", "secrettoken"}); err != nil {
		t.Fatal(err)
	}
	if *token != "secrettoken" {
		t.Errorf("token = %q; want secrettoken", *token)
	}
	if got := fs.Lookup("nats-token").Value.String(); got != "[REDACTED]" {
		t.Errorf("Value.String() = %q; want [REDACTED]", got)
	}
	var help strings.Builder
	PrintFlags(&help, fs)
	if !strings.Contains(help.String(), "--nats-token token\n      a token\n      default \"\"; env PUSHFABRIC_NATS_TOKEN") {
		t.Errorf("help:\n%s", help.String())
	}
}
