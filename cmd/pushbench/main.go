// Command pushbench measures pushfabric end to end on one machine: load
// (delivered pushes/s and latency, beside a raw NATS baseline measured in
// the same run) and scale (idle sessions: connect rate, memory per
// session, drain time). It starts the NATS server, the edge and the
// clients as separate processes, so each one's CPU and memory is its own.
//
//	make build
//	./bin/pushbench load --sessions 1000 --duration 10s
//	./bin/pushbench scale --sessions 19000
//
// It runs the edge as the real binary, so it links neither the edge server
// nor the bus: only the producer and Go clients (tests/imports_test.go).
package main

import (
	"fmt"
	"os"
)

const usage = `Usage: pushbench <command> [flags]

Commands:
  load     pushes to S sessions from P producers; throughput, latency, CPU, beside raw NATS
  scale    holds N idle sessions; connect rate, memory per session, drain time on SIGTERM

Run pushbench <command> --help for its flags. BENCHMARKS.md has the figures and commands.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "load":
		return runLoadCommand(args[1:])
	case "scale":
		return runScaleCommand(args[1:])
	case "worker": // started by pushbench itself
		return runWorker(args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(os.Stderr, usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "pushbench: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// fail prints an error for command and returns exit code 1.
func fail(command string, err error) int {
	fmt.Fprintf(os.Stderr, "pushbench %s: %v\n", command, err)
	return 1
}
