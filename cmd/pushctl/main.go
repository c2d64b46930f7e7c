// Command pushctl is pushfabric's operator and developer tool: push to a
// session, listen as a client, send a request as a client, mint client
// tokens, and inspect, replay and purge dead letters.
//
//	pushctl token --secret-file data/jwt-secret alice
//	pushctl listen --secret-file data/jwt-secret alice
//	pushctl push alice 'hello'
//	pushctl request echo 'hi'
//	pushctl dlq ls --reason offline
//	pushctl dlq replay --session alice
//
// Every flag can also be set by an environment variable PUSHFABRIC_<FLAG>;
// pushctl <command> --help lists them.
//
// pushctl is a client of the fabric: it imports the producer client, the
// Go client (edge/client), token, dlq and the NATS contract, and links
// neither the edge server nor the bus (tests/imports_test.go).
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// A command is one of pushctl's subcommands.
type command struct {
	summary string
	run     func(args []string) int
}

var commands = map[string]command{
	"push":    {"publish a push to a session and print the acknowledgement", runPush},
	"listen":  {"connect as a client and print pushes as they arrive", runListen},
	"request": {"send a request as a client and print the streamed response", runRequest},
	"token":   {"mint a client token for a session", runToken},
	"dlq":     {"dead letters: ls, show, stats, replay, purge", runDLQ},
	"top":     {"a live view of edge nodes from their /metrics", runTop},
}

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	return runCommands("pushctl", "Usage: pushctl <command> [flags] [arguments]", commands, args)
}

// runCommands runs the command args name from cmds, or prints the list of
// commands (exit status 0 when asked for, 2 otherwise).
func runCommands(prog, synopsis string, cmds map[string]command, args []string) int {
	if len(args) > 0 {
		if cmd, ok := cmds[args[0]]; ok {
			return cmd.run(args[1:])
		}
	}
	asked := len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")
	if len(args) > 0 && !asked {
		fmt.Fprintf(os.Stderr, "%s: unknown command %q\n\n", prog, args[0])
	}
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(synopsis + "\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(&b, "\nRun %s <command> --help for its flags.\n", prog)
	fmt.Fprint(os.Stderr, b.String())
	if asked {
		return 0
	}
	return 2
}

// fail prints an error for command and returns exit code 1.
func fail(command string, err error) int {
	fmt.Fprintf(os.Stderr, "pushctl %s: %v\n", command, err)
	return 1
}
