// Command pushctl is pushfabric's operator and developer tool: push to a
// session, listen as a client, send a request as a client, mint client
// tokens, ask where a session is and revoke it, change its groups, list
// a node's sessions, and inspect, replay and purge dead letters.
//
//	pushctl token --secret-file data/jwt-secret alice
//	pushctl listen --secret-file data/jwt-secret alice
//	pushctl push alice 'hello'
//	pushctl request echo 'hi'
//	pushctl presence alice
//	pushctl presence --group user-alice
//	pushctl kick alice
//	pushctl member alice --join room-1
//	pushctl dlq ls --reason offline
//	pushctl dlq replay --session alice
//
// Every flag can also be set by an environment variable PUSHCTL_<FLAG>
// (the dead-letter filters by PUSHCTL_DLQ_<FLAG>, so that a filter left in
// the shell never meets pushctl push, and presence's --group and --all by
// PUSHCTL_PRESENCE_<FLAG>, so that a group left in the shell for pushctl
// push never turns pushctl presence <session> into a group's; --nats also
// by NATS_URL, --context by NATS_CONTEXT); pushctl <command>
// --help lists them. Flags may come before or after the arguments. A
// mistake on the command line (an unknown flag, a missing argument, a value
// the command refuses) is one line on standard error and exit status 2;
// exit status 1 is a command that ran and failed.
//
// pushctl is a client of the fabric: it imports the producer client, the
// backend helper, the Go client (edge/client), token, dlq and the NATS
// contract, and links neither the edge server nor the bus
// (tests/imports_test.go).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/internal/version"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// envPrefix starts every environment variable pushctl reads for a flag.
const envPrefix = "PUSHCTL_"

// commands is pushctl's command line: each command a field, its flags and
// arguments the fields of its struct.
type commands struct {
	Version    kong.VersionFlag `env:"-" help:"Print the version and exit."`
	Push       pushCmd          `cmd:"" help:"Publish a push to a session and print the acknowledgement."`
	Listen     listenCmd        `cmd:"" help:"Connect as a client and print pushes as they arrive."`
	Request    requestCmd       `cmd:"" help:"Send a request as a client and print the streamed response."`
	Token      tokenCmd         `cmd:"" help:"Mint a client token for a session."`
	DLQ        dlqCmd           `cmd:"" name:"dlq" help:"Dead letters: ls, show, stats, replay, purge."`
	Presence   presenceCmd      `cmd:"" help:"Ask whether a session is online, and where."`
	Kick       kickCmd          `cmd:"" help:"Revoke a session: close its connection with reason revoked."`
	Member     memberCmd        `cmd:"" help:"Join a connected session to groups, or take it out of them."`
	Sessions   sessionsCmd      `cmd:"" help:"List the sessions edge nodes hold, from their admin listeners."`
	Top        topCmd           `cmd:"" help:"A live view of edge nodes from their /metrics."`
	Completion completionCmd    `cmd:"" help:"Print a shell completion script: bash, zsh or fish."`
}

// A runner is a command: run does it and returns the exit status.
type runner interface{ run() int }

const description = `pushfabric's operator and developer tool.

Every flag can also be set by the environment variable shown with it
(PUSHCTL_<FLAG>; the dead-letter filters PUSHCTL_DLQ_<FLAG>; presence's
--group and --all PUSHCTL_PRESENCE_<FLAG>; --nats also by NATS_URL,
--context by NATS_CONTEXT); a flag on the command line wins.
Flags may come before or after the arguments; after -- everything is an
argument (pushctl push alice -- -1).

Exit status: 0 done; 1 the command ran and failed (a dead push, an error
frame, NATS unreachable); 2 a mistake on the command line (an unknown flag,
a missing argument, a value the command refuses), told in one line.`

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func newParser(m *commands, stdout, stderr io.Writer) (*kong.Kong, error) {
	vars := kong.Vars{"version": version.Current().String(), "prefix": protocol.DefaultPrefix, "reasons": reasonNames()}
	return cli.NewParser(m, "pushctl", description, envPrefix, vars, stdout, stderr)
}

// dispatch parses args and runs the command they name.
func dispatch(args []string, stdout, stderr io.Writer) int {
	var m commands
	p, err := newParser(&m, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "pushctl:", err)
		return 1
	}
	if len(args) > 0 && args[0] == completeCommand {
		return complete(p.Model.Node, args[1:], stdout)
	}
	ctx, err := p.Parse(args)
	if err != nil {
		return cli.UsageError(stderr, "pushctl", err)
	}
	return ctx.Selected().Target.Addr().Interface().(runner).run()
}

// fail prints an error for command, with what to do next when it is one
// a new user meets first (cli.Explain), and returns exit code 1.
func fail(command string, err error) int {
	fmt.Fprintf(os.Stderr, "pushctl %s: %s\n", command, cli.Explain(err))
	return 1
}

// checkArg is push.CheckName(what, value) (push.CheckSession for a
// session: not a reserved name) for the positional argument
// arg, and nil when arg is not on the command line: kong validates a
// command before it checks that its arguments are there, and then says
// "missing argument" itself.
func checkArg(kctx *kong.Context, arg, what, value string) error {
	switch {
	case !onCommandLine(kctx, arg):
		return nil
	case what == "session":
		return push.CheckSession(value)
	}
	return push.CheckName(what, value)
}

// onCommandLine reports whether the positional argument arg was given.
func onCommandLine(kctx *kong.Context, arg string) bool {
	for _, p := range kctx.Path {
		if p.Positional != nil && p.Positional.Name == arg {
			return true
		}
	}
	return false
}

// reasonNames is every dead-letter reason, comma-separated, for help
// texts: push.Reasons, so that no list is written out by hand.
func reasonNames() string {
	names := make([]string, len(push.Reasons))
	for i, r := range push.Reasons {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// counted is n and the word, in the plural unless n is 1: "1 member",
// "3 members".
func counted(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
