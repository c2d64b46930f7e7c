package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/internal/natsurl"
	"github.com/pushfabric/pushfabric/token"
)

// printQuickstart tells a new user how to reach this node.
func printQuickstart(o *options, node *app.Node) {
	ws, tcp := node.Addr("websocket"), node.Addr("tcp")
	nats := node.Bus.URL()
	if node.Bus.Embedded() && o.cfg.Bus.User != "" { // the server wants --nats-user and its password
		nats = strings.Replace(nats, "://", "://"+natsurl.Redacted+"@", 1)
	}
	prefix := o.cfg.Identity.Prefix
	fmt.Fprintf(os.Stderr, "\npushfabric edge %q is up.\n\n", o.cfg.Identity.Node)
	if ws != nil {
		fmt.Fprintf(os.Stderr, "  WebSocket clients: ws://%s/\n", ws)
	}
	if tcp != nil {
		fmt.Fprintf(os.Stderr, "  framed-TCP clients: tcp://%s\n", tcp)
	}
	fmt.Fprintf(os.Stderr, "  producers and the nats CLI: %s\n", nats)
	if strings.Contains(nats, natsurl.Redacted) {
		fmt.Fprintf(os.Stderr, "  (the commands below need your NATS credentials where %s stands)\n", natsurl.Redacted)
	}
	if a := node.Addr("admin"); a != nil {
		fmt.Fprintf(os.Stderr, "  metrics and health: http://%s/metrics  /healthz  /readyz\n", a)
	}
	fmt.Fprintln(os.Stderr)
	pushctl := pushctlCommand()
	listen := pushctl + " listen"
	if o.cfg.JWTSecretFile != "" {
		fmt.Fprintf(os.Stderr, "In another terminal, mint a token and connect as session alice:\n")
		fmt.Fprintf(os.Stderr, "  %s token --secret-file %s alice\n", pushctl, o.cfg.JWTSecretFile)
		listen += " --secret-file " + o.cfg.JWTSecretFile
	} else {
		fmt.Fprintf(os.Stderr, "In another terminal, connect as session alice:\n")
	}
	if ws != nil {
		listen += fmt.Sprintf(" --addr ws://%s/", ws)
	}
	fmt.Fprintf(os.Stderr, "  %s alice\n\n", listen)
	fmt.Fprintf(os.Stderr, "Then push to alice, with pushctl or the stock nats CLI (make nats installs it as ./bin/nats):\n")
	fmt.Fprintf(os.Stderr, "  %s push --nats %s alice 'hello from pushctl'\n", pushctl, nats)
	fmt.Fprintf(os.Stderr, "  ./bin/nats --server %s request %s.alice.high 'hello from nats'\n\n", nats, prefix)
	request := strings.Replace(listen, " listen", " request", 1)
	fmt.Fprintf(os.Stderr, "Clients' requests go to backends over NATS (docs/requests.md): start one, then ask it as carol\n(a session of its own: alice stays with the listener):\n")
	fmt.Fprintf(os.Stderr, "  go run ./examples/rpc-service --nats %s --prefix %s\n", nats, prefix)
	fmt.Fprintf(os.Stderr, "  %s --session carol feed 3\n\n", request)
	if ws != nil {
		printBrowser(o, ws, pushctl)
	}
	if a := node.Addr("admin"); a != nil {
		fmt.Fprintf(os.Stderr, "Watch the node (docs/operations.md says what each figure means):\n")
		fmt.Fprintf(os.Stderr, "  %s top --admin http://%s\n\n", pushctl, a)
	}
}

// browserTokenTTL is how long the token in the banner's page URL is valid.
const browserTokenTTL = 24 * time.Hour

// printBrowser tells how to open the demo page (--demo) as session
// browser, with a token for browser in its URL (?session= in development
// mode), or how to turn it on.
func printBrowser(o *options, ws net.Addr, pushctl string) {
	if !o.cfg.Demo {
		fmt.Fprintf(os.Stderr, "A demo page in a browser: run the edge with --demo (make run does), and open /demo/ on the WebSocket listener.\n\n")
		return
	}
	query, err := browserQuery(o, pushctl)
	if err != nil {
		return // the node started with this secret: not expected
	}
	scheme := "http"
	if o.cfg.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(os.Stderr, "The demo page, as session browser: its pushes, the receipts it sends, a request to the backend above\n(feed 3) with its streamed reply; open in a browser:\n")
	fmt.Fprintf(os.Stderr, "  %s://%s/demo/?%s\n\n", scheme, ws, query)
}

// browserQuery is the page URL's query: a token minted from the node's
// JWT secret (valid browserTokenTTL), the command that mints one with a
// public key, or the session in development mode.
func browserQuery(o *options, pushctl string) (string, error) {
	switch {
	case o.cfg.JWTSecretFile != "":
		key, err := token.ReadSecretFile(o.cfg.JWTSecretFile)
		if err != nil {
			return "", fmt.Errorf("browser token: %w", err)
		}
		tok, err := token.MintWith(key, "browser", browserTokenTTL, token.MintOptions{Audience: o.cfg.JWTAudience, Issuer: o.cfg.JWTIssuer})
		if err != nil {
			return "", fmt.Errorf("browser token: %w", err)
		}
		return "token=" + tok, nil
	case o.cfg.JWTPublicKeyFile != "":
		return "token=$(" + pushctl + " token --key-file <private key> browser)", nil
	case o.cfg.JWTKeysDir != "" || o.cfg.JWTJWKSFile != "":
		return "token=$(" + pushctl + " token --kid <key id> --key-file <private key> browser)", nil
	}
	return "session=browser", nil
}

// pushctlCommand is how the banner's commands run pushctl: the one
// installed beside this edge (make run puts both in ./bin), as a path
// from the working directory when it is under it; else pushctl from PATH,
// else go run in a checkout.
func pushctlCommand() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "pushctl")
		if _, err := os.Stat(p); err == nil {
			if wd, err := os.Getwd(); err == nil {
				if rel, err := filepath.Rel(wd, p); err == nil && filepath.IsLocal(rel) {
					return "./" + rel
				}
			}
			return p
		}
	}
	if _, err := exec.LookPath("pushctl"); err == nil {
		return "pushctl"
	}
	return "go run ./cmd/pushctl"
}
