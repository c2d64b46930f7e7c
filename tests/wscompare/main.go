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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/tests/idle"
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
	libs := flag.String("libs", "pushfabric,gobwas,gorilla,coder", "libraries to measure, each in a process of its own")
	hold := flag.Bool("hold", false, "internal: be the client process holding idle connections")
	addr := flag.String("addr", "", "internal: the server for -hold")
	row := flag.Bool("row", false, "internal: measure the one library in -libs and print its row")
	flag.Parse()
	switch {
	case *hold:
		os.Exit(idle.Hold(*addr, *conns, false))
	case *row:
		if err := printRow(os.Stdout, *libs, *conns, *messages); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", *libs, err)
			os.Exit(1)
		}
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "library\tidle conns\tRSS B/conn\theap B/conn\tstack B/conn\tgoroutines/conn\tmsgs/s to one client\t\n")
	for _, name := range strings.Split(*libs, ",") {
		// A fresh process per library: one that ran before would leave heap
		// mapped that the next reuses, and flatter it.
		cmd := exec.Command(os.Args[0], "-row", "-libs", name, "-conns", strconv.Itoa(*conns), "-messages", strconv.Itoa(*messages))
		cmd.Stdout, cmd.Stderr = tw, os.Stderr
		if err := cmd.Run(); err != nil {
			tw.Flush()
			os.Exit(1)
		}
	}
	tw.Flush()
}

// printRow measures one library and prints its tab-separated row.
func printRow(w io.Writer, name string, conns, messages int) error {
	start, ok := libraries[name]
	if !ok {
		return fmt.Errorf("unknown library")
	}
	mem, err := measureIdle(start, conns)
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	rate, err := measureThroughput(start, messages)
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.0f\t\n", name, conns, mem.RSS, mem.Heap, mem.Stack, mem.Goroutines, rate)
	return err
}

func measureIdle(start func() (server, error), conns int) (idle.Mem, error) {
	srv, err := start()
	if err != nil {
		return idle.Mem{}, err
	}
	defer srv.close()
	before := idle.ReadMem()
	release, err := idle.Spawn(exec.Command(os.Args[0], "-hold", "-addr", srv.url(), "-conns", strconv.Itoa(conns)))
	if err != nil {
		return idle.Mem{}, err
	}
	defer release()
	for srv.conns() < conns { // the last upgrades may still be finishing
		time.Sleep(time.Millisecond)
	}
	return idle.PerConn(before, idle.ReadMem(), conns), nil
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
