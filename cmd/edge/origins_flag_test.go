package main

import (
	"io"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
)

// A bad --ws-allowed-origins value, on the command line or in its
// environment variable, is refused like any flag's invalid value: the error
// names the flag, or the variable, not the config field behind it.
func TestBadAllowedOriginNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   string
		names string // what the error must name
	}{
		{name: "flag", args: []string{"--ws-allowed-origins", "https://ok.example, ftp://x"}, names: "flag -ws-allowed-origins"},
		{name: "environment", env: "ftp://x", names: "PUSHFABRIC_WS_ALLOWED_ORIGINS="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("PUSHFABRIC_WS_ALLOWED_ORIGINS", tc.env)
			}
			o := &options{}
			fs := flags(o)
			fs.SetOutput(io.Discard)
			err := cli.Parse(fs, tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.names) || !strings.Contains(err.Error(), `"ftp://x" is not an origin`) ||
				strings.Contains(err.Error(), "WSAllowedOrigins") {
				t.Fatalf("parse: %v; want an error naming %s and saying ftp://x is not an origin", err, tc.names)
			}
		})
	}
}
