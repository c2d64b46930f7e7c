package natsurl

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://u:secretpw@127.0.0.1:4222", "nats://[REDACTED]@127.0.0.1:4222"},
		{"nats://secrettoken@n1:4222", "nats://[REDACTED]@n1:4222"},
		{"u:secretpw@n1:4222", "[REDACTED]@n1:4222"},
		{"tls://u:p%40ss@n1:4222,nats://n2:4222, nats://t@n3", "tls://[REDACTED]@n1:4222,nats://n2:4222, nats://[REDACTED]@n3"},
		{"nats://u:se@cr/et@n1:4222", "nats://[REDACTED]@n1:4222"},              // an unescaped @ and / in the password
		{"nats://u:secret pw@127.0.0.1:abc", "nats://[REDACTED]@127.0.0.1:abc"}, // does not parse
		{"", ""},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, ok := range []string{"nats://127.0.0.1:4222", "n1:4222,n2", "nats://u:p@n1:4222", "wss://t@n1", " nats://n1 , "} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q): %v", ok, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"nats://u:secretpw@127.0.0.1:abc", "nats url nats://[REDACTED]@127.0.0.1:abc is not a valid URL"},
		{"nats://u:secret/pw@127.0.0.1:1", "nats url nats://[REDACTED]@127.0.0.1:1 is not a valid URL"},
		{"nats://n1,nats://127.0.0.1:abc", `invalid port ":abc"`},
	} {
		err := Check(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%q) = %v; want an error containing %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Check(%q) = %v: shows the secret", c.in, err)
		}
	}
}
