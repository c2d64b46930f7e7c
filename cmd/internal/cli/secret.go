package cli

import (
	"flag"
	"strings"

	"github.com/pushfabric/pushfabric/internal/natsurl"
)

// SecretVar defines a string flag whose value is a secret (a token given
// inline): RedactArgs hides it, and so does the flag's String, the way
// anything that prints flag values sees it.
func SecretVar(fs *flag.FlagSet, p *string, name, usage string) {
	fs.Var(secret{p}, name, usage)
}

// secret is the flag.Value of a SecretVar flag.
type secret struct{ p *string }

func (s secret) Set(v string) error { *s.p = v; return nil }

// String is "" for an empty value (the flag's default shows as ""), else
// [REDACTED].
func (s secret) String() string {
	if s.p == nil || *s.p == "" {
		return ""
	}
	return natsurl.Redacted
}

// RedactArgs returns a copy of args, a command line parsed by fs, that
// is safe to show: the value of each SecretVar flag is [REDACTED], whether
// given as --name=value or as --name value, and so are the credentials of
// any NATS URL (natsurl.Redact). args itself is left as it is.
func RedactArgs(fs *flag.FlagSet, args []string) []string {
	return RedactArgsOf(args, func(name string) bool { return isSecret(fs, name) })
}

// RedactArgsOf is RedactArgs for a command line of any parser: secret
// says which flag names (without dashes) hold a secret.
func RedactArgsOf(args []string, secret func(name string) bool) []string {
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

func isSecret(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	_, ok := f.Value.(secret)
	return ok
}
