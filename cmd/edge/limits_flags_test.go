package main

import (
	"io"
	"strings"
	"testing"
)

// The limits' flags reach the edge's configuration, and one out of range
// is refused naming the flag.
func TestLimitFlags(t *testing.T) {
	o, _, ok := parse([]string{"--max-sessions", "5", "--connect-rate", "2.5", "--connect-rate-per-ip", "0.5",
		"--max-handshakes", "9", "--client-frame-rate", "11", "--client-byte-rate", "12", "--request-rate", "13",
		"--max-pending-frame-bytes", "2097152", "--max-groups", "4"}, io.Discard, io.Discard)
	if !ok {
		t.Fatal("parse refused the flags")
	}
	e := o.cfg.Edge
	if e.MaxSessions != 5 || e.ConnectRate != 2.5 || e.ConnectRatePerIP != 0.5 || e.MaxHandshakes != 9 || e.ClientFrameRate != 11 ||
		e.ClientByteRate != 12 || e.RequestRate != 13 || e.MaxPendingFrameBytes != 2<<20 || e.MaxGroups != 4 {
		t.Fatalf("edge config %+v", e)
	}
	for _, c := range []struct{ args, want string }{
		{"--max-groups=33", "--max-groups must be at most 32"},
		{"--max-pending-frame-bytes=1000", "--max-pending-frame-bytes and --max-frame-size do not fit"},
		{"--max-frame-size=100", "--max-frame-size must be at least 1024 (1 KiB)"},
	} {
		var stderr strings.Builder
		if _, code, ok := parse(strings.Fields(c.args), io.Discard, &stderr); ok || code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%s: exit %d, %q; want refused: %s", c.args, code, stderr.String(), c.want)
		}
	}
}
