package edge_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// The idle-memory benchmark keeps the client ends of its connections in a
// child process (this test binary again), so the figures are the server's
// alone.
const (
	holdAddrEnv  = "PUSHFABRIC_TEST_HOLD_ADDR"
	holdCountEnv = "PUSHFABRIC_TEST_HOLD_COUNT"
	idleConnsEnv = "PUSHFABRIC_IDLE_CONNS" // how many connections; default 2000
)

// BenchmarkIdleMemory reports the server's memory per idle connection over
// real loopback sockets: RSS, Go heap in use and goroutine stacks, each
// divided by the number of connections (default 2,000; set
// PUSHFABRIC_IDLE_CONNS, up to ~19,000 under a 20,000 open-file limit).
// Run it with -benchtime=1x: one iteration is one full measurement.
func BenchmarkIdleMemory(b *testing.B) {
	conns := 2000
	if v, err := strconv.Atoi(os.Getenv(idleConnsEnv)); err == nil && v > 0 {
		conns = v
	}
	for _, transport := range []string{"tcp", "ws"} {
		b.Run(fmt.Sprintf("%s/conns=%d", transport, conns), func(b *testing.B) {
			for range b.N {
				measureIdle(b, transport, conns)
			}
		})
	}
}

type memFigures struct{ rss, heap, stack, goroutines float64 }

func readMem(b *testing.B) memFigures {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm: RSS cannot be read here")
	}
	var size, resident float64
	fmt.Sscan(string(statm), &size, &resident)
	return memFigures{
		rss:        resident * float64(os.Getpagesize()),
		heap:       float64(ms.HeapInuse),
		stack:      float64(ms.StackInuse),
		goroutines: float64(runtime.NumGoroutine()),
	}
}

func measureIdle(b *testing.B, transport string, conns int) {
	nd := startNode(b, edge.DefaultConfig(), edge.Options{})
	addr := nd.tcp
	if transport == "ws" {
		addr = nd.ws
	}
	before := readMem(b)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdAddrEnv+"="+addr, holdCountEnv+"="+strconv.Itoa(conns))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("client process: %q, %v", line, err)
	}
	if got := nd.srv.Len(); got != conns {
		b.Fatalf("%d connections held; want %d", got, conns)
	}
	after := readMem(b)
	per := func(a, z float64) float64 { return (z - a) / float64(conns) }
	b.ReportMetric(per(before.rss, after.rss), "rss-B/conn")
	b.ReportMetric(per(before.heap, after.heap), "heap-B/conn")
	b.ReportMetric(per(before.stack, after.stack), "stack-B/conn")
	b.ReportMetric(per(before.goroutines, after.goroutines), "goroutines/conn")
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("client process: %v", err)
	}
	nd.stop(b)
}

// holdClients is the child process: it opens the connections, says ready,
// and holds them until its stdin closes. It returns the exit code.
func holdClients() int {
	addr, n := os.Getenv(holdAddrEnv), 0
	n, _ = strconv.Atoi(os.Getenv(holdCountEnv))
	held := make([]net.Conn, 0, n)
	for i := range n {
		nc, err := holdOne(addr, fmt.Sprintf("idle-%d", i))
		if err != nil {
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			return 1
		}
		held = append(held, nc)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, nc := range held {
		_ = nc.Close()
	}
	return 0
}

// holdOne connects one session and reads its welcome, with no goroutine.
func holdOne(addr, session string) (net.Conn, error) {
	var (
		nc  net.Conn
		br  *bufio.Reader
		err error
	)
	read := func() ([]byte, error) { return wire.ReadTCP(br, nil, wire.DefaultMaxFrameSize) }
	if strings.HasPrefix(addr, "ws://") {
		nc, br, _, err = ws.Dial(context.Background(), addr+"?session="+session)
		if br == nil {
			br = bufio.NewReaderSize(nc, 512)
		}
		read = func() ([]byte, error) {
			return wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, func(byte, []byte) error { return nil })
		}
	} else {
		nc, err = net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
		if err == nil {
			b, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, ID: session})
			_, err = nc.Write(b)
			br = bufio.NewReaderSize(nc, 512)
		}
	}
	if err != nil {
		return nil, err
	}
	body, err := read()
	if err != nil {
		return nil, err
	}
	if f, err := wire.Decode(body); err != nil || f.Type != wire.TypeWelcome {
		return nil, fmt.Errorf("no welcome: %v %v", f.Type, err)
	}
	return nc, nil
}
