package cli

import (
	"slices"
	"testing"
)

func TestRedactArgs(t *testing.T) {
	secret := func(name string) bool { return name == "nats-token" }
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
		in := slices.Clone(c.in)
		if got := RedactArgs(in, secret); !slices.Equal(got, c.want) {
			t.Errorf("RedactArgs(%q) = %q; want %q", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("RedactArgs(%q) changed its argument to %q", c.in, in)
		}
	}
}
