package edge_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/tests/idle"
)

// The idle-memory benchmark keeps the client ends of its connections in a
// child process (this test binary again), so the figures are the server's
// alone.
const (
	holdAddrEnv  = "PUSHFABRIC_TEST_HOLD_ADDR"
	holdCountEnv = "PUSHFABRIC_TEST_HOLD_COUNT"
	idleConnsEnv = "PUSHFABRIC_IDLE_CONNS" // how many connections
)

// BenchmarkIdleMemory reports the server's memory per idle connection over
// real loopback sockets: RSS, Go heap in use and goroutine stacks, each
// divided by the number of connections, PUSHFABRIC_IDLE_CONNS (up to
// ~19,000 under a 20,000 open-file limit; `make bench-idle`). Without it
// the benchmark is skipped. Run it with -benchtime=1x: one iteration is one
// full measurement.
func BenchmarkIdleMemory(b *testing.B) {
	conns, err := strconv.Atoi(os.Getenv(idleConnsEnv))
	if err != nil || conns <= 0 {
		b.Skip("set " + idleConnsEnv + " to the number of idle connections to measure")
	}
	for _, transport := range []string{"tcp", "ws"} {
		b.Run(fmt.Sprintf("%s/conns=%d", transport, conns), func(b *testing.B) {
			for range b.N {
				measureIdle(b, transport, conns)
			}
		})
	}
}

func measureIdle(b *testing.B, transport string, conns int) {
	nd := startNode(b, edge.DefaultConfig(), edge.Options{})
	addr := nd.tcp
	if transport == "ws" {
		addr = nd.ws
	}
	before := idle.ReadMem()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdAddrEnv+"="+addr, holdCountEnv+"="+strconv.Itoa(conns))
	release, err := idle.Spawn(cmd)
	if err != nil {
		b.Fatal(err)
	}
	if got := nd.srv.Len(); got != conns {
		b.Fatalf("%d connections held; want %d", got, conns)
	}
	per := idle.PerConn(before, idle.ReadMem(), conns)
	b.ReportMetric(per.RSS, "rss-B/conn")
	b.ReportMetric(per.Heap, "heap-B/conn")
	b.ReportMetric(per.Stack, "stack-B/conn")
	b.ReportMetric(per.Goroutines, "goroutines/conn")
	if err := release(); err != nil {
		b.Fatalf("client process: %v", err)
	}
	nd.stop(b)
}

// holdClients is the child process of the idle-memory benchmark.
func holdClients() int {
	n, _ := strconv.Atoi(os.Getenv(holdCountEnv))
	return idle.Hold(os.Getenv(holdAddrEnv), n, true)
}
