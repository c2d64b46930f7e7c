// Command pushhttp is an HTTP endpoint for producers that have no NATS
// client (webhooks, shell scripts, serverless functions): it takes a push
// as an HTTP request, publishes it with the producer client (so a push
// for an offline session is parked in the dead-letter stream, as any Go
// producer's), and answers with the edge's acknowledgement.
//
//	pushhttp key new --name billing --keys-file data/http-keys   # prints the key once
//	pushhttp serve --keys-file data/http-keys                    # HTTP on 127.0.0.1:8088
//	curl -H "Authorization: Bearer $KEY" --data-binary hi 127.0.0.1:8088/v1/push/alice/high
//
// It is a binary of its own so that it holds producer credentials and
// nothing more: edge nodes keep their own NATS role. Callers authenticate
// with API keys kept hashed in a file, or JWTs signed with a secret of
// pushhttp's own, never with nothing (docs/http.md). Every flag can also
// be set by an environment variable PUSHHTTP_<FLAG> (--nats also by
// NATS_URL, --context by NATS_CONTEXT). Exit status: 2 for a mistake on
// the command line, told in one line; 1 for a command that ran and
// failed.
//
// pushhttp links neither the edge server nor the bus
// (tests/imports_test.go).
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/cmd/pushhttp/httpapi"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/protocol"
)

// envPrefix starts every environment variable pushhttp reads for a flag.
const envPrefix = "PUSHHTTP_"

// commands is pushhttp's command line.
type commands struct {
	Version kong.VersionFlag `env:"-" help:"Print the version and exit."`
	Serve   serveCmd         `cmd:"" help:"Serve the HTTP endpoint: each request a push, published with the producer client."`
	Key     keyCmd           `cmd:"" help:"API keys: new (print a key once, keep its hash), rm."`
	Token   tokenCmd         `cmd:"" help:"Mint a producer token (a JWT with the push scope) signed with --jwt-secret-file."`
}

// A runner is a command: run does it and returns the exit status.
type runner interface{ run() int }

const description = `An HTTP endpoint for producers without a NATS client: POST a push, get the edge's
acknowledgement (docs/http.md).

Every flag can also be set by the environment variable shown with it (PUSHHTTP_<FLAG>;
--nats also by NATS_URL, --context by NATS_CONTEXT); a flag on the command line wins.

Exit status: 0 done (serve: stopped by SIGTERM or SIGINT, every in-flight request answered
and the dead letters written); 1 the command ran and failed (NATS unreachable at start, a
keys file that does not parse); 2 a mistake on the command line, told in one line.`

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func newParser(m *commands, stdout, stderr io.Writer) (*kong.Kong, error) {
	d := httpapi.DefaultConfig()
	vars := kong.Vars{
		"version": version.Current().String(), "prefix": protocol.DefaultPrefix, "audience": httpapi.DefaultAudience,
		"maxpayload": strconv.Itoa(d.MaxPayload), "maxbatch": strconv.Itoa(d.MaxBatch),
		"maxbatchbytes": strconv.FormatInt(d.MaxBatchBytes, 10), "timeout": d.Timeout.String(), "maxtimeout": d.MaxTimeout.String(),
		"listen": defaultListen,
	}
	return cli.NewParser(m, "pushhttp", description, envPrefix, vars, stdout, stderr)
}

// dispatch parses args and runs the command they name.
func dispatch(args []string, stdout, stderr io.Writer) int {
	var m commands
	p, err := newParser(&m, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "pushhttp:", err)
		return 1
	}
	ctx, err := p.Parse(args)
	if err != nil {
		return cli.UsageError(stderr, "pushhttp", err)
	}
	return ctx.Selected().Target.Addr().Interface().(runner).run()
}

// fail prints an error for command, with what to do next when it is one
// a new user meets first (cli.Explain), and returns exit status 1.
func fail(command string, err error) int {
	fmt.Fprintf(os.Stderr, "pushhttp %s: %s\n", command, cli.Explain(err))
	return 1
}
