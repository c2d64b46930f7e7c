package cli

import (
	"strings"

	"github.com/pushfabric/pushfabric/internal/natsurl"
)

// RedactArgs returns a copy of args, a command line, that is safe to
// show: the value of each flag secret names (its name without dashes) is
// [REDACTED], whether given as --name=value or as --name value, and so
// are the credentials of any NATS URL (natsurl.Redact). args itself is
// left as it is.
func RedactArgs(args []string, secret func(name string) bool) []string {
	out := make([]string, len(args))
	nextIsSecret := false
	for i, a := range args {
		if nextIsSecret {
			out[i], nextIsSecret = natsurl.Redacted, false
			continue
		}
		out[i] = natsurl.Redact(a)
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !secret(name) {
			continue
		}
		if hasValue {
			out[i] = a[:len(a)-len(value)] + natsurl.Redacted
		} else {
			nextIsSecret = true
		}
	}
	return out
}
