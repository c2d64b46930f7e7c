package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
)

// child is a pushbench worker process.
type child struct {
	mu    sync.Mutex // one command at a time
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	ready report
}

// startWorker starts pushbench worker <args…> and waits for its ready line.
func startWorker(args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"worker"}, args...)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	c.out.Buffer(make([]byte, 64<<10), 64<<20) // a report carries a histogram
	if c.ready, err = c.read(); err != nil {
		c.stop()
		return nil, fmt.Errorf("worker %s: %w", args[0], err)
	}
	return c, nil
}

func (c *child) read() (report, error) {
	if !c.out.Scan() {
		err := c.out.Err()
		if err == nil {
			err = errors.New("exited")
		}
		return report{}, err
	}
	var r report
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		return r, err
	}
	if r.Event == "error" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// call sends a command and returns the answer.
func (c *child) call(command string) (report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.in, command); err != nil {
		return report{}, err
	}
	return c.read()
}

// stop closes the worker's stdin and waits for it to exit.
func (c *child) stop() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// edgeChild is an edge binary started by the bench.
type edgeChild struct {
	cmd    *exec.Cmd
	addrs  map[string]string // websocket, tcp, admin
	exited chan error
}

// findEdge finds the edge binary: the given path, or next to pushbench, or
// on PATH.
func findEdge(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "edge")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("edge")
	if err != nil {
		return "", errors.New("no edge binary next to pushbench or on PATH: run make build, or give --edge-bin")
	}
	return p, nil
}

// maxEdgeLines is how many of the edge's warnings and errors are shown.
const maxEdgeLines = 5

// startEdge starts the edge on natsURL with every listener on a free
// loopback port and waits for its "edge started" log line. Its connect
// rate is off: the clients connect all at once from one address, which is
// the start of a run, not what it measures (extra may set it again).
func startEdge(bin, natsURL string, extra, env []string) (*edgeChild, error) {
	args := append([]string{"--nats-url", natsURL, "--ws-listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--node", "bench", "--log-format", "json", "--connect-rate", "0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &edgeChild{cmd: cmd, exited: make(chan error, 1)}
	started := make(chan map[string]string, 1)
	go e.readLog(errPipe, started)
	if err := e.awaitStarted(started); err != nil {
		return nil, err
	}
	if err := e.awaitReady(); err != nil {
		return nil, err
	}
	return e, nil
}

// readLog reads the edge's log until it exits: it sends the addresses of
// the "edge started" line on started (or closes it if there is none),
// shows the first few warnings and errors, and then reports the exit on
// e.exited.
func (e *edgeChild) readLog(errPipe io.Reader, started chan<- map[string]string) {
	sc := bufio.NewScanner(errPipe)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent, shown := false, 0
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "edge started" && !sent {
			addrs := map[string]string{}
			for _, k := range []string{"websocket", "tcp", "admin"} {
				addrs[k], _ = line[k].(string)
			}
			started <- addrs
			sent = true
			continue
		}
		// Warnings and errors only, and the first few of them; development
		// mode is the point here.
		if (line["level"] == "warn" || line["level"] == "error") && !strings.Contains(sc.Text(), "DEVELOPMENT MODE") {
			if shown++; shown <= maxEdgeLines {
				fmt.Fprintln(os.Stderr, "edge:", sc.Text())
			}
		}
	}
	if shown > maxEdgeLines {
		fmt.Fprintf(os.Stderr, "edge: … and %d more warnings and errors\n", shown-maxEdgeLines)
	}
	if !sent {
		close(started)
	}
	e.exited <- e.cmd.Wait()
}

// awaitStarted waits up to a minute for the "edge started" line and keeps
// the addresses it names.
func (e *edgeChild) awaitStarted(started <-chan map[string]string) error {
	select {
	case a, ok := <-started:
		if !ok {
			return fmt.Errorf("edge exited before starting: %v", <-e.exited)
		}
		e.addrs = a
		return nil
	case <-time.After(time.Minute):
		_ = e.cmd.Process.Kill()
		return errors.New("edge did not start within a minute")
	}
}

// awaitReady waits up to 30 s for the edge's /readyz: not ready means NATS
// or JetStream is not there yet.
func (e *edgeChild) awaitReady() error {
	for deadline := time.Now().Add(30 * time.Second); ; {
		if r, err := http.Get("http://" + e.addrs["admin"] + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			e.kill()
			return errors.New("edge not ready after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// terminate sends SIGTERM and returns how long the edge took to exit.
func (e *edgeChild) terminate(limit time.Duration) (time.Duration, error) {
	begin := time.Now()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-e.exited:
		return time.Since(begin), err
	case <-time.After(limit):
		e.kill()
		return time.Since(begin), fmt.Errorf("edge still running %s after SIGTERM", limit)
	}
}

func (e *edgeChild) kill() {
	_ = e.cmd.Process.Kill()
	<-e.exited
}

// procStat is a process's CPU time and resident memory from /proc.
func procStat(pid int) (cpu float64, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return (utime + stime) / ticks, pages * int64(os.Getpagesize()), nil
}

// edgeMetrics is what the bench reads from an edge's /metrics.
type edgeMetrics struct {
	cpu      float64
	rss      float64
	sessions float64
	routines float64 // goroutines
	fds      float64 // open files
	heap     float64 // heap allocated (live, or garbage not yet collected), bytes
	lost     float64 // pushes neither delivered nor dead-lettered
	written  float64 // dead letters the stream acknowledged
	dead     map[string]float64
	slow     float64
	dropped  float64 // messages NATS dropped before the edge saw them
	// overflows: group pushes dead-lettered queue_full for the group, each
	// a copy due at every member on the node (in dead["queue_full"] once)
	overflows float64
}

func scrapeEdge(admin string) (edgeMetrics, error) {
	m := edgeMetrics{dead: map[string]float64{}}
	mfs, err := cli.ScrapeMetrics(context.Background(), "http://"+strings.TrimPrefix(admin, "http://")+"/metrics")
	if err != nil {
		return m, err
	}
	one := func(name string) float64 { return cli.Sum(mfs, name, nil) }
	m.cpu, m.rss = one("process_cpu_seconds_total"), one("process_resident_memory_bytes")
	m.sessions, m.slow = one("pushfabric_sessions"), one("pushfabric_nats_slow_consumer_events_total")
	m.routines, m.lost = one("go_goroutines"), one("pushfabric_pushes_lost_total")
	m.fds, m.heap = one("process_open_fds"), one("go_memstats_heap_alloc_bytes")
	m.written = one("pushfabric_dead_letters_written_total")
	m.dropped = one("pushfabric_nats_dropped_messages_total")
	m.overflows = one("pushfabric_group_overflows_total")
	for _, r := range cli.LabelValues(mfs, "pushfabric_dead_letters_total", "reason") {
		m.dead[r] = cli.Sum(mfs, "pushfabric_dead_letters_total", map[string]string{"reason": r})
	}
	return m, nil
}
