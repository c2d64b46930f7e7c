package cli

import (
	"bytes"
	"testing"

	"github.com/alecthomas/kong"
)

// An argument kong reads as an unknown flag because it starts with - and a
// digit is told to be put after --, with a command line that does it and
// leaves out the flags (and their values, which may be secrets); any other
// unknown flag is kong's message.
func TestUsageErrorDashedArgument(t *testing.T) {
	var cmd struct {
		Run struct {
			Token string `short:"t"`
			Quiet bool   `short:"q"`
			Arg   string `arg:""`
			More  string `arg:"" optional:""`
		} `cmd:""`
	}
	for args, want := range map[string][]string{
		"-1":                    {"run", "x", "-1"},
		"-2x is read as a flag": {"run", "--token", "secret", "-q", "x", "-2x"},
		"(tool run x -- -3.5)":  {"run", "-t", "secret", "--quiet", "x", "-3.5", "--token=s2"},
		`unknown flag --bogus`:  {"run", "x", "--bogus"},
	} {
		p, err := kong.New(&cmd, kong.Name("tool"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Parse(want)
		if err == nil {
			t.Fatalf("%q parsed", want)
		}
		var b bytes.Buffer
		if code := UsageError(&b, "tool", err); code != UsageExit || !bytes.Contains(b.Bytes(), []byte(args)) || bytes.Contains(b.Bytes(), []byte("secret")) {
			t.Errorf("%q: exit %d, %q; want %q in it and no secret", want, code, b.String(), args)
		}
	}
}
