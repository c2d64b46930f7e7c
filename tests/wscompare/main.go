// Command wscompare measures the WebSocket libraries the edge could be
// built on, used the way the edge uses one: the server memory each idle
// connection costs, and how fast a server writes 134-byte messages to one
// client. It is its own module so that the libraries it compares stay out
// of pushfabric's go.mod.
//
//	cd tests/wscompare && go run . -conns 15000 -messages 1000000
//
// Each library is measured in a fresh server; the idle clients live in a
// child process (this program with -hold), so the figures are the server's
// alone. The clients are the same raw gobwas/ws clients for every server.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// A server under test. blast: when a client connects with ?blast=N (or a
// session named blast-N), the server writes it N messages of msgSize bytes.
type server interface {
	url() string
	conns() int
	close()
}

const msgSize = 134 // a 128-byte push in the edge's frame format

var libraries = map[string]func() (server, error){
	"pushfabric": startPushfabric,
	"gobwas":     startGobwas,
	"gorilla":    startGorilla,
	"coder":      startCoder,
}

func main() {
	conns := flag.Int("conns", 5000, "idle connections to hold (each costs the server one open file)")
	messages := flag.Int("messages", 500000, "messages for the throughput run")
	libs := flag.String("libs", "pushfabric,gobwas,gorilla,coder", "libraries to measure")
	hold := flag.Bool("hold", false, "internal: be the client process holding idle connections")
	addr := flag.String("addr", "", "internal: the server for -hold")
	flag.Parse()
	if *hold {
		os.Exit(holdClients(*addr, *conns))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "library\tidle conns\tRSS B/conn\theap B/conn\tstack B/conn\tgoroutines/conn\tmsgs/s to one client\t\n")
	for _, name := range strings.Split(*libs, ",") {
		start, ok := libraries[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown library %q\n", name)
			os.Exit(2)
		}
		idle, err := measureIdle(start, *conns)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s idle: %v\n", name, err)
			os.Exit(1)
		}
		rate, err := measureThroughput(start, *messages)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s throughput: %v\n", name, err)
			os.Exit(1)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.0f\t\n", name, *conns, idle.rss, idle.heap, idle.stack, idle.goroutines, rate)
	}
	tw.Flush()
}

type figures struct{ rss, heap, stack, goroutines float64 }

func readMem() figures {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var size, resident float64
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		fmt.Sscan(string(statm), &size, &resident)
	}
	return figures{resident * float64(os.Getpagesize()), float64(ms.HeapInuse), float64(ms.StackInuse), float64(runtime.NumGoroutine())}
}

func measureIdle(start func() (server, error), conns int) (figures, error) {
	srv, err := start()
	if err != nil {
		return figures{}, err
	}
	defer srv.close()
	before := readMem()
	cmd := exec.Command(os.Args[0], "-hold", "-addr", srv.url(), "-conns", strconv.Itoa(conns))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return figures{}, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		return figures{}, fmt.Errorf("client process: %q %v", line, err)
	}
	for srv.conns() < conns { // the last upgrades may still be finishing
		time.Sleep(time.Millisecond)
	}
	after := readMem()
	n := float64(conns)
	return figures{(after.rss - before.rss) / n, (after.heap - before.heap) / n,
		(after.stack - before.stack) / n, (after.goroutines - before.goroutines) / n}, nil
}

func measureThroughput(start func() (server, error), messages int) (float64, error) {
	srv, err := start()
	if err != nil {
		return 0, err
	}
	defer srv.close()
	u := fmt.Sprintf("%s?blast=%d&session=blast-%d", srv.url(), messages, messages)
	begin := time.Now()
	nc, br, _, err := ws.Dial(context.Background(), u)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	if br == nil {
		br = bufio.NewReaderSize(nc, 64<<10)
	}
	buf := make([]byte, 0, 4096)
	ignore := func(byte, []byte) error { return nil }
	for got := 0; got < messages; {
		msg, err := wire.ReadWS(br, buf, wire.DefaultMaxFrameSize, false, ignore)
		if err != nil {
			return 0, fmt.Errorf("after %d messages: %w", got, err)
		}
		if len(msg) == msgSize {
			got++
		}
	}
	return float64(messages) / time.Since(begin).Seconds(), nil
}

// holdClients opens conns connections with no goroutines, says ready, and
// holds them until stdin closes.
func holdClients(addr string, conns int) int {
	held := make([]net.Conn, 0, conns)
	for i := range conns {
		nc, _, _, err := ws.Dial(context.Background(), fmt.Sprintf("%s?session=idle-%d", addr, i))
		if err != nil {
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			return 1
		}
		held = append(held, nc)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, nc := range held {
		nc.Close()
	}
	return 0
}

// blastCount reads N from ?blast=N.
func blastCount(uri string) int {
	_, q, _ := strings.Cut(uri, "blast=")
	q, _, _ = strings.Cut(q, "&")
	n, _ := strconv.Atoi(q)
	return n
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// httpServer is the shared shape of the net/http based servers.
type httpServer struct {
	ln    net.Listener
	srv   *http.Server
	count func() int
}

func (h *httpServer) url() string { return "ws://" + h.ln.Addr().String() + "/" }
func (h *httpServer) conns() int  { return h.count() }
func (h *httpServer) close()      { h.srv.Close() }
