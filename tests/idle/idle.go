// Package idle measures server memory per idle connection: it reads the
// process's memory figures, and runs the client ends of the connections in
// a child process so that they do not count. The edge's idle-memory
// benchmark and tests/wscompare share it. Only tests and benchmarks
// import it.
package idle

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// Mem is a snapshot of the process's memory, after a full GC.
type Mem struct {
	RSS, Heap, Stack, Goroutines float64
}

// ReadMem returns the figures now. RSS is zero where /proc is missing.
func ReadMem() Mem {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var size, resident float64
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		fmt.Sscan(string(statm), &size, &resident)
	}
	return Mem{
		RSS:        resident * float64(os.Getpagesize()),
		Heap:       float64(ms.HeapInuse),
		Stack:      float64(ms.StackInuse),
		Goroutines: float64(runtime.NumGoroutine()),
	}
}

// PerConn is (after - before) / n, field by field.
func PerConn(before, after Mem, n int) Mem {
	d := float64(n)
	return Mem{(after.RSS - before.RSS) / d, (after.Heap - before.Heap) / d,
		(after.Stack - before.Stack) / d, (after.Goroutines - before.Goroutines) / d}
}

// Spawn starts cmd, a process that runs [Hold], and returns once it has
// opened its connections. release closes them and waits for the process.
func Spawn(cmd *exec.Cmd) (release func() error, err error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	release = func() error {
		_ = stdin.Close()
		return cmd.Wait()
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		_ = release()
		return nil, fmt.Errorf("client process said %q: %v", line, err)
	}
	return release, nil
}

// Hold is the child process's work: it opens n connections to addr
// (ws://host:port/ or tcp://host:port, sessions idle-0, idle-1, …), prints
// "ready" once every one is established, and holds them with no goroutine
// until its standard input closes. With welcome, each WebSocket connection
// also waits for the server's first message (an edge's welcome: the session
// is registered). It returns the process's exit code.
func Hold(addr string, n int, welcome bool) int { return HoldTLS(addr, n, welcome, nil) }

// HoldTLS is Hold for wss:// and tls:// (framed TCP over TLS) addresses
// too, with tc the client's TLS configuration.
func HoldTLS(addr string, n int, welcome bool, tc *tls.Config) int {
	held := make([]net.Conn, 0, n)
	for i := range n {
		nc, err := dial(addr, fmt.Sprintf("idle-%d", i), welcome, tc)
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

// dial connects one session. Over TCP it says hello and reads the edge's
// welcome; over WebSocket it completes the upgrade (any WebSocket server
// will do) and, with welcome, reads the first message.
func dial(addr, session string, welcome bool, tc *tls.Config) (net.Conn, error) {
	if scheme, host, _ := strings.Cut(addr, "://"); scheme == "tcp" || scheme == "tls" {
		var nc net.Conn
		var err error
		if scheme == "tls" {
			nc, err = tls.Dial("tcp", host, tc)
		} else {
			nc, err = net.Dial("tcp", host)
		}
		if err != nil {
			return nil, err
		}
		hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, ID: session})
		if _, err := nc.Write(hello); err != nil {
			return nil, err
		}
		if _, err := wire.ReadTCP(bufio.NewReaderSize(nc, 256), nil, wire.DefaultMaxFrameSize); err != nil {
			return nil, fmt.Errorf("no welcome: %w", err)
		}
		return nc, nil
	}
	nc, br, _, err := ws.Dialer{TLSConfig: tc}.Dial(context.Background(), addr+"?session="+session)
	if err != nil || !welcome {
		return nc, err
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, 256)
	}
	ignore := func(byte, []byte) error { return nil }
	if _, err := wire.ReadWS(br, nil, wire.DefaultMaxFrameSize, false, ignore); err != nil {
		return nil, fmt.Errorf("no welcome: %w", err)
	}
	return nc, nil
}
