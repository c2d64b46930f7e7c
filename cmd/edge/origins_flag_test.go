package main

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
)

// A bad --ws-allowed-origins value, on the command line or in its
// environment variable, is refused like any flag's invalid value: the error
// is one line naming the flag, not the config field behind it.
func TestBadAllowedOriginNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{name: "flag", args: []string{"--ws-allowed-origins", "https://ok.example, ftp://x"}},
		{name: "environment", env: "ftp://x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("PUSHFABRIC_WS_ALLOWED_ORIGINS", tc.env)
			}
			var stderr strings.Builder
			_, code, ok := parse(tc.args, io.Discard, &stderr)
			msg := stderr.String()
			if ok || code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--ws-allowed-origins") ||
				!strings.Contains(msg, `"ftp://x" is not an origin`) || strings.Contains(msg, "WSAllowedOrigins") {
				t.Fatalf("parse: exit %d, %q; want one line naming --ws-allowed-origins and saying ftp://x is not an origin", code, msg)
			}
		})
	}
}

// The flags' defaults are app.DefaultConfig's, and every flag lands in
// the config.
func TestFlagsReachTheConfig(t *testing.T) {
	o, _, ok := parse([]string{"--queue-len", "7", "--nats-url", "nats://a:4222,nats://b:4222", "--node", "n9",
		"--ws-allowed-origins", "https://a.example,", "--rate", "2.5", "--dlq-replicas", "1"}, io.Discard, io.Discard)
	if !ok {
		t.Fatal("parse refused the flags")
	}
	c := o.cfg
	if c.Edge.QueueLen != 7 || len(c.Bus.URLs) != 2 || c.Identity.Node != "n9" || len(c.Edge.WSAllowedOrigins) != 1 || c.Edge.Rate != 2.5 {
		t.Fatalf("config %+v", c)
	}
	o, _, ok = parse(nil, io.Discard, io.Discard)
	if want := app.DefaultConfig(); !ok || !reflect.DeepEqual(o.cfg, want) {
		t.Fatalf("with no flags the config is\n%+v\nwant app.DefaultConfig()\n%+v", o.cfg, want)
	}
}
