// Command pushbench measures pushfabric end to end on one machine: load
// (delivered pushes/s and latency, beside a raw NATS baseline measured in
// the same run) and scale (idle sessions: connect rate, memory per
// session, drain time). It starts the NATS server, the edge and the
// clients as separate processes, so each one's CPU and memory is its own.
//
//	make build
//	./bin/pushbench load --sessions 1000 --duration 10s
//	./bin/pushbench scale --sessions 19000
//	./bin/pushbench soak --duration 1h
//
// Every flag can also be set by an environment variable PUSHBENCH_<FLAG>;
// pushbench <command> --help lists them. A mistake on the command line is
// one line on standard error and exit status 2.
//
// It runs the edge as the real binary, so it links neither the edge server
// nor the bus: only the producer and Go clients (tests/imports_test.go).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/internal/version"
)

// commands is pushbench's command line.
type commands struct {
	Version kong.VersionFlag `env:"-" help:"Print the version and exit."`
	Load    loadCmd          `cmd:"" help:"Pushes to S sessions from P producers; throughput, latency, CPU, beside raw NATS."`
	Scale   scaleCmd         `cmd:"" help:"Holds N idle sessions; connect rate, memory per session, drain time on SIGTERM."`
	Soak    soakCmd          `cmd:"" help:"Churns sessions over two edges for an hour under steady pushes; memory, goroutines and files over time, and every push accounted for."`
}

// A runner is a command: run does it and returns the exit status.
type runner interface{ run() int }

const description = `Measures pushfabric end to end on one machine. BENCHMARKS.md has the figures
and commands.

Every flag can also be set by the environment variable shown with it
(PUSHBENCH_<FLAG>); a flag on the command line wins. Exit status: 0 done;
1 the run failed; 2 a mistake on the command line, told in one line.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "worker" { // started by pushbench itself
		return runWorker(args[1:])
	}
	var m commands
	p, err := kong.New(&m, kong.Name("pushbench"), kong.Description(description),
		kong.DefaultEnvars("PUSHBENCH"), kong.Vars{"version": version.Current().String()},
		kong.Writers(stdout, stderr), kong.ConfigureHelp(kong.HelpOptions{Compact: true}))
	if err != nil {
		fmt.Fprintln(stderr, "pushbench:", err)
		return 1
	}
	ctx, err := p.Parse(args)
	if err != nil {
		return cli.UsageError(stderr, "pushbench", err)
	}
	return ctx.Selected().Target.Addr().Interface().(runner).run()
}

// fail prints an error for command and returns exit code 1.
func fail(command string, err error) int {
	fmt.Fprintf(os.Stderr, "pushbench %s: %v\n", command, err)
	return 1
}
