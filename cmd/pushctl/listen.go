package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// clientFlags are how pushctl connects to an edge as a client.
type clientFlags struct {
	keyFlags `embed:""`
	Addr     string `default:"ws://127.0.0.1:8080/" help:"Edge address: ws://host:port/ or tcp://host:port; over TLS wss://host:port/ or tls://host:port."`
	CA       string `name:"ca" placeholder:"FILE" help:"PEM certificates of the authorities to trust for wss:// and tls:// (default: the system's)."`
	Token    string `help:"Client token (see pushctl token)."`
	JSON     bool   `name:"json" help:"Print each frame as a JSON object."`
}

// check refuses, as a command-line mistake, an address the client cannot
// dial, a --ca that holds no certificate and two keys.
func (f *clientFlags) check() error {
	if err := checkAddr(f.Addr); err != nil {
		return err
	}
	if _, err := f.tlsConfig(); err != nil {
		return err
	}
	if f.SecretFile != "" && f.KeyFile != "" {
		return errBothKeys
	}
	return nil
}

// tlsConfig is the client's TLS configuration: the --ca roots, or nil
// for the system's.
func (f *clientFlags) tlsConfig() (*tls.Config, error) {
	if f.CA == "" {
		return nil, nil
	}
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", f.CA)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// checkAddr accepts what client.Dial dials: ws:// or wss://host:port/…,
// tcp:// or tls://host:port.
func checkAddr(addr string) error {
	u, err := url.Parse(addr)
	if err == nil && (u.Scheme == "ws" || u.Scheme == "wss" || u.Scheme == "tcp" || u.Scheme == "tls") {
		if _, port, err := net.SplitHostPort(u.Host); err == nil && port != "" {
			return nil
		}
	}
	return fmt.Errorf("--addr %s: want ws://host:port/ or tcp://host:port (wss://, tls:// over TLS)", addr)
}

// listenCmd is pushctl listen.
type listenCmd struct {
	clientFlags `embed:""`
	Session     string `arg:"" help:"The session to hold."`
	Reconnect   bool   `help:"Connect again, with backoff, when the connection ends after shutdown, idle, too_slow, overloaded, token_expired or a lost connection (with a fresh token from --secret-file or --key-file), saying so on stderr; stop after replaced, auth, revoked or protocol."`
}

// Help is shown under the command's usage.
func (c *listenCmd) Help() string {
	return "Connects to an edge as a client holding the session and prints every push as it arrives,\nuntil interrupted or the edge closes the connection (with --reconnect: for a reason not to\nreconnect). Authenticate with --token, or mint one with --secret-file or --key-file; with none\nof them the edge must be in development mode.\n" +
		"Exit status: 0 when interrupted, or when the edge closes the connection with reason normal or\nshutdown (the node is stopping: nothing is wrong with the listener); 1 when it closes it with any\nother reason (replaced included: another connection took the session) or on error."
}

// Validate checks the address, the keys and the session's name.
func (c *listenCmd) Validate(kctx *kong.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	return checkArg(kctx, "session", "session", c.Session)
}

func (c *listenCmd) run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Reconnect {
		return c.reconnecting(ctx)
	}
	conn, minted, err := dialAs(ctx, c.clientFlags, c.Session)
	if err != nil {
		return fail("listen", err)
	}
	defer conn.Close()
	if minted != "" {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go conn.KeepTokenFresh(ctx, minted, func(context.Context) (string, error) {
			tok, err := c.keyFlags.mint(c.Session)
			if err != nil {
				fmt.Fprintf(os.Stderr, "token refresh: %v; trying again in 2s\n", err)
			}
			return tok, err
		}, dialTimeout)
	}
	return listen(ctx, conn, c.Addr, c.JSON)
}

// reconnecting is listen --reconnect: a session that comes back, each
// reconnect told on stderr.
func (c *listenCmd) reconnecting(ctx context.Context) int {
	tc, err := c.tlsConfig()
	if err != nil {
		return fail("listen", err)
	}
	o := client.Options{Token: c.Token, TLSConfig: tc}
	r := client.ReconnectOptions{OnState: printState}
	switch {
	case c.Token != "":
	case c.keyFlags.given():
		r.Token = func(context.Context) (string, error) { return c.keyFlags.mint(c.Session) }
	default:
		o.Session = c.Session
	}
	s, err := client.Connect(ctx, c.Addr, o, r)
	var closed *client.CloseError
	switch {
	case errors.Is(err, context.Canceled):
		return 0
	case errors.As(err, &closed) && closed.Reason == wire.CloseAuth && o.Token == "" && r.Token == nil:
		return fail("listen", cli.NoToken(err))
	case err != nil:
		return fail("listen", err)
	}
	defer s.Close()
	return listen(ctx, held{s}, c.Addr, c.JSON)
}

// held is a client.Session as listen reads it.
type held struct{ s *client.Session }

func (h held) Recv(ctx context.Context) (client.Frame, error) { return h.s.Recv(ctx) }
func (h held) Session() string                                { return h.s.ID() }
func (h held) Node() string                                   { return h.s.Node() }

// printState tells of a reconnecting session's disconnects, failed
// attempts and reconnects on stderr.
func printState(st client.State) {
	switch {
	case st.Kind == client.StateConnected && st.Err != nil:
		fmt.Fprintf(os.Stderr, "reconnected to node %q after %s\n", st.Node, endText(st.Err))
	case st.Kind == client.StateDisconnected:
		fmt.Fprintf(os.Stderr, "disconnected: %s; reconnecting in %v\n", endText(st.Err), st.Delay.Round(time.Millisecond))
	case st.Kind == client.StateRetrying:
		fmt.Fprintf(os.Stderr, "connect failed: %v; retrying in %v\n", st.Err, st.Delay.Round(time.Millisecond))
	}
}

// endText is why a connection ended, as a person reads it.
func endText(err error) string {
	var closed *client.CloseError
	if errors.As(err, &closed) {
		return closeText(closed)
	}
	return "a lost connection (" + err.Error() + ")"
}

// dialTimeout bounds a connect, and a token minted for a refresh.
const dialTimeout = 10 * time.Second

// dialAs connects to the edge at f.Addr as a client holding session: with
// f.Token, with a token minted from f's key (returned as minted), or
// (neither) in the edge's development mode; over TLS with the --ca roots.
func dialAs(ctx context.Context, f clientFlags, session string) (c *client.Conn, minted string, err error) {
	tc, err := f.tlsConfig()
	if err != nil {
		return nil, "", err
	}
	o := client.Options{Token: f.Token, TLSConfig: tc}
	switch {
	case f.Token != "":
	case f.keyFlags.given():
		if minted, err = f.keyFlags.mint(session); err != nil {
			return nil, "", err
		}
		o.Token = minted
	default:
		o.Session = session
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err = client.Dial(ctx, f.Addr, o)
	var closed *client.CloseError
	if errors.As(err, &closed) && closed.Reason == wire.CloseAuth && o.Token == "" {
		err = cli.NoToken(err)
	}
	return c, minted, err
}

// receiver is a connection, or a session that comes back, as listen reads it.
type receiver interface {
	Recv(ctx context.Context) (client.Frame, error)
	Session() string
	Node() string
}

func listen(ctx context.Context, c receiver, addr string, asJSON bool) int {
	fmt.Fprintf(os.Stderr, "listening as session %q on node %q (%s); Ctrl-C to stop\n", c.Session(), c.Node(), addr)
	for {
		f, err := c.Recv(ctx)
		var closed *client.CloseError
		switch {
		case errors.Is(err, context.Canceled):
			return 0
		case errors.As(err, &closed):
			fmt.Fprintf(os.Stderr, "the edge closed the connection: %s\n", closeText(closed))
			if closed.Reason == wire.CloseShutdown || closed.Reason == wire.CloseNormal {
				return 0
			}
			return 1
		case err != nil:
			return fail("listen", err)
		}
		printFrame(f, asJSON)
	}
}

// printFrame prints a frame; a payload that is not text is shown quoted.
// Only a push has a priority.
func printFrame(f client.Frame, asJSON bool) {
	if asJSON {
		prio := ""
		if f.Type == wire.TypePush {
			prio = f.Priority.String()
		}
		b, _ := json.Marshal(struct {
			Type        string `json:"type"`
			ID          string `json:"id,omitempty"`
			Priority    string `json:"priority,omitempty"`
			ContentType string `json:"content_type,omitempty"`
			Payload     string `json:"payload"`
			Code        string `json:"code,omitempty"`
		}{f.Type.String(), f.ID, prio, f.ContentType, string(f.Payload), f.Name})
		fmt.Println(string(b))
		return
	}
	body := string(f.Payload)
	if !utf8.Valid(f.Payload) {
		body = strconv.Quote(body)
	}
	if f.ContentType != "" {
		fmt.Printf("%s %s %s [%s]: %s\n", f.Type, f.Priority, f.ID, f.ContentType, body)
		return
	}
	fmt.Printf("%s %s %s: %s\n", f.Type, f.Priority, f.ID, body)
}

// closeText is a close as a person reads it: the reason, what it means,
// and the edge's message: "replaced (a newer connection took the session)".
func closeText(e *client.CloseError) string {
	text := string(e.Reason)
	if m := e.Reason.Meaning(); m != "" {
		text += " (" + m + ")"
	}
	if e.Message != "" {
		text += ": " + e.Message
	}
	return text
}
