package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/internal/natsauth"
	"github.com/pushfabric/pushfabric/internal/natsurl"
)

// DefaultNATSURL is where a tool connects when neither a flag, an
// environment variable nor a nats CLI context names a server.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// NATSFlags are how a client tool reaches NATS: the server URLs and the
// credentials the edge takes (a .creds file, an NKey seed, a token, a user
// and password file, TLS), each also from a nats CLI context. Embed it in a
// kong command. A flag or its environment variable wins over the context,
// field by field; NATS_URL and NATS_CONTEXT are honoured as the nats CLI
// honours them.
type NATSFlags struct {
	URL          string `name:"nats" env:"${envprefix}NATS,NATS_URL" placeholder:"URLS" help:"NATS server URLs, comma-separated; default: the nats context's, else ${natsdefault}."`
	Context      string `name:"context" env:"${envprefix}CONTEXT,NATS_CONTEXT" placeholder:"NAME" help:"nats CLI context to take the URL and credentials from (~/.config/nats/context/NAME.json); default: the one selected in ~/.config/nats/context.txt, if any."`
	Creds        string `name:"nats-creds" placeholder:"FILE" help:"NATS credentials (.creds) file."`
	NKey         string `name:"nats-nkey" placeholder:"FILE" help:"NATS NKey seed file."`
	Token        string `name:"nats-token" placeholder:"TOKEN" help:"NATS authentication token; ps shows it: prefer the environment variable."`
	User         string `name:"nats-user" placeholder:"USER" help:"NATS user, with --nats-password-file."`
	PasswordFile string `name:"nats-password-file" placeholder:"FILE" help:"file holding the --nats-user password (surrounding white space is ignored)."`
	TLSCA        string `name:"nats-tls-ca" placeholder:"FILE" help:"CA bundle to trust for NATS TLS."`
	TLSCert      string `name:"nats-tls-cert" placeholder:"FILE" help:"client certificate for NATS TLS, with --nats-tls-key."`
	TLSKey       string `name:"nats-tls-key" placeholder:"FILE" help:"client key for NATS TLS."`
	InboxPrefix  string `name:"nats-inbox-prefix" env:"${envprefix}NATS_INBOX_PREFIX" placeholder:"PREFIX" help:"prefix of the tool's NATS reply subjects instead of _INBOX (the role's own, such as _INBOX_operator, where NATS permissions give each role one); default: the nats context's inbox_prefix."`
}

// NATSVars are the kong variables NATSFlags' tags use: the tool's
// environment prefix (PUSHCTL_, say) and the default URL.
func NATSVars(envPrefix string) map[string]string {
	return map[string]string{"envprefix": envPrefix, "natsdefault": DefaultNATSURL}
}

// natsContext is what a nats CLI context file holds that a client needs.
type natsContext struct {
	URL      string `json:"url"`
	Token    string `json:"token"`
	User     string `json:"user"`
	Password string `json:"password"`
	Creds    string `json:"creds"`
	NKey     string `json:"nkey"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	CA       string `json:"ca"`
	Inbox    string `json:"inbox_prefix"`
}

// Connect connects as name, within timeout, to the URLs and with the
// credentials of the flags, filled in from the nats context; extra
// options come last (a long-running tool's unlimited reconnects, say).
// Errors name what is wrong.
func (f NATSFlags) Connect(name string, timeout time.Duration, extra ...nats.Option) (*nats.Conn, error) {
	ctx, err := loadNATSContext(f.Context)
	if err != nil {
		return nil, err
	}
	url := first(f.URL, ctx.URL, DefaultNATSURL)
	if err := natsurl.Check(url); err != nil {
		return nil, err
	}
	opts, err := f.options(ctx)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name(name), nats.Timeout(timeout), nats.ErrorHandler(refused(name, os.Stderr)))
	if inbox := first(f.InboxPrefix, ctx.Inbox); inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", natsurl.Redact(url), err)
	}
	return nc, nil
}

// options are the credential options of the flags over those of c.
func (f NATSFlags) options(c natsContext) ([]nats.Option, error) {
	user, pass, err := f.userPassword(c)
	if err != nil {
		return nil, err
	}
	cert, key := f.TLSCert, f.TLSKey
	if cert == "" && key == "" {
		cert, key = expand(c.Cert), expand(c.Key)
	}
	return natsauth.Credentials{
		CredsFile: first(f.Creds, expand(c.Creds)), NKeySeedFile: first(f.NKey, expand(c.NKey)),
		Token: first(f.Token, c.Token), User: user, Password: pass,
		TLSCA: first(f.TLSCA, expand(c.CA)), TLSCert: cert, TLSKey: key,
	}.Options()
}

// userPassword is --nats-user and the password in --nats-password-file,
// or the context's user and password.
func (f NATSFlags) userPassword(c natsContext) (user, password string, err error) {
	if (f.User == "") != (f.PasswordFile == "") {
		return "", "", errors.New("give --nats-user and --nats-password-file together")
	}
	if f.User == "" {
		return c.User, c.Password, nil
	}
	password, err = natsauth.ReadPasswordFile(f.PasswordFile)
	return f.User, password, err
}

// loadNATSContext reads the nats CLI context name, or the selected one
// when name is empty; no selected context is an empty one. A named
// context that cannot be read is an error.
func loadNATSContext(name string) (natsContext, error) {
	var c natsContext
	dir, err := natsConfigDir()
	if err != nil {
		return c, nil // no home: no contexts
	}
	if name == "" {
		b, err := os.ReadFile(filepath.Join(dir, "context.txt"))
		if name = strings.TrimSpace(string(b)); err != nil || name == "" {
			return c, nil
		}
	}
	if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return c, fmt.Errorf("nats context %q: not a context name", name)
	}
	b, err := os.ReadFile(filepath.Join(dir, "context", name+".json"))
	if err != nil {
		return c, fmt.Errorf("nats context %q: %w", name, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("nats context %q: %w", name, err)
	}
	return c, nil
}

// natsConfigDir is the nats CLI's configuration folder, found as the nats
// CLI finds it: $XDG_CONFIG_HOME/nats, else .config/nats in the user's
// home folder.
func natsConfigDir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "nats"), nil
	}
	home, err := homeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "nats"), nil
}

// homeDir is the user's home folder as the nats CLI takes it: the user
// database's, not $HOME (which a shell or sudo may have changed).
func homeDir() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("nats contexts: %w", err)
	}
	if u.HomeDir == "" {
		return "", errors.New("nats contexts: the user has no home folder; set XDG_CONFIG_HOME")
	}
	return u.HomeDir, nil
}

// expand replaces a leading ~ by the home folder, as the nats CLI does for
// a context's file names.
func expand(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := homeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// first is the first of vs that is not empty.
func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// The hints refused gives.
const (
	inboxRefusedHint = "(this NATS user's replies come under an inbox prefix of its own: give it with --nats-inbox-prefix, or inbox_prefix in the context; the shipped users have _INBOX_<role>, e.g. _INBOX_producer)"
	rightRefusedHint = "(this NATS user lacks the right: docs/deploying.md#permissions lists each role's)"
)

// refused is the error handler of a tool's NATS connection: a permission
// violation is said at once on w, with what to do, and ends the
// connection, so that the command fails now rather than when its timeout
// passes (a refused reply subscription, say, leaves every request waiting).
func refused(name string, w io.Writer) nats.ErrHandler {
	return func(nc *nats.Conn, _ *nats.Subscription, err error) {
		if !errors.Is(err, nats.ErrPermissionViolation) {
			return
		}
		hint, inbox := rightRefusedHint, nc.Opts.InboxPrefix
		if inbox == "" {
			inbox = nats.InboxPrefix
		}
		if strings.Contains(err.Error(), "Subscription to \""+inbox) {
			hint = inboxRefusedHint
		}
		fmt.Fprintf(w, "%s: NATS refused: %v %s\n", name, err, hint)
		nc.Close()
	}
}
