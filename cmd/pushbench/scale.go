package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
)

// scaleOutput is what pushbench scale prints.
type scaleOutput struct {
	Sessions          int            `json:"sessions"`
	Transport         string         `json:"transport"`
	ClientProcs       int            `json:"client_procs"`
	SourceAddrs       int            `json:"source_addresses"`
	Connected         int            `json:"connected"`
	ConnectSeconds    float64        `json:"connect_seconds"`
	ConnectsPerSecond float64        `json:"connects_per_second"`
	EdgeRSSBytes      float64        `json:"edge_rss_bytes"`
	EdgePerSession    float64        `json:"edge_rss_bytes_per_session"`
	GoroutinesPerSess float64        `json:"edge_goroutines_per_session"`
	NATSPerSession    float64        `json:"nats_rss_bytes_per_session"`
	KernelPerSession  float64        `json:"kernel_bytes_per_session"`
	DrainSeconds      float64        `json:"drain_seconds,omitempty"`
	Closed            map[string]int `json:"close_reasons,omitempty"`
	// With --queued: the pushes published just before SIGTERM, and where
	// they went.
	Queued *drainAccount `json:"queued,omitempty"`
}

// drainAccount is what became of the pushes published before the drain.
type drainAccount struct {
	Sent      uint64            `json:"sent"`
	Delivered uint64            `json:"delivered"`
	Dead      map[string]uint64 `json:"dead_letters"`
	Missing   int64             `json:"missing"`
}

// scaleCmd is pushbench scale.
type scaleCmd struct {
	Sessions    int    `default:"10000" help:"Idle sessions to hold."`
	Transport   string `default:"tcp" enum:"tcp,ws" help:"Client transport: tcp or ws."`
	ClientProcs int    `help:"Client processes (default: one per 5,000 sessions)."`
	SourceAddrs int    `default:"4" help:"Source addresses (127.0.0.2 and up) the clients dial from."`
	edgeFlags   `embed:""`
	Drain       bool `default:"true" negatable:"" help:"Stop the edge with SIGTERM at the end and time its drain."`
	Queued      int  `help:"With --drain: publish this many pushes per session just before SIGTERM and account for each (delivered or dead-lettered)."`
	JSON        bool `name:"json" help:"Print the results as JSON."`
}

// Help is shown under the command's usage.
func (scaleCmd) Help() string {
	return `Starts a NATS server and an edge node, connects N idle client sessions from child processes
spread over source addresses 127.0.0.2, 127.0.0.3, …, and reports the connect rate, the edge's
memory per session (its NATS subscription included), the NATS server's, the kernel's memory
per session (socket slab and TCP buffers of both ends, in no process's RSS), and how long the edge takes to drain on
SIGTERM. One process can hold as many sessions as its open-file limit allows.`
}

func (c *scaleCmd) output() scaleOutput {
	out := scaleOutput{Sessions: c.Sessions, Transport: c.Transport, ClientProcs: c.ClientProcs, SourceAddrs: c.SourceAddrs}
	if out.ClientProcs == 0 {
		out.ClientProcs = (out.Sessions + 4999) / 5000
	}
	return out
}

// Validate refuses a scale run that cannot run.
func (c *scaleCmd) Validate() error {
	out := c.output()
	return out.validate()
}

func (c *scaleCmd) run() int {
	out := c.output()
	env, err := newBenchEnv("", "", "", c.edgeFlags)
	if err != nil {
		return fail("scale", err)
	}
	defer env.close()
	if err := out.measure(env, c.Drain, c.Queued); err != nil {
		return fail("scale", err)
	}
	if c.JSON {
		return printJSON(out)
	}
	out.print(os.Stdout)
	return 0
}

// validate checks the flags, the client processes defaulted.
func (o *scaleOutput) validate() error {
	switch {
	case o.Sessions < 1 || o.ClientProcs < 1 || o.SourceAddrs < 1 || o.SourceAddrs > 250:
		return errors.New("--sessions and --client-procs must be at least 1, --source-addrs 1 to 250")
	case o.Transport != "tcp" && o.Transport != "ws":
		return fmt.Errorf("--transport %q: want tcp or ws", o.Transport)
	}
	return nil
}

// measure connects the sessions, works out what each costs, and, with
// drain, times the edge's drain on SIGTERM.
func (o *scaleOutput) measure(env *benchEnv, drain bool, queued int) error {
	before := env.sample()
	kernelBefore, err := kernelMemory()
	if err != nil {
		return err
	}
	if err := o.connectAll(env); err != nil {
		return err
	}
	if err := o.perSession(env, before, kernelBefore); err != nil {
		return err
	}
	if !drain {
		return nil
	}
	return o.drainEdge(env, queued)
}

// connectAll connects the sessions from o.ClientProcs worker processes at
// once, dialing from o.SourceAddrs addresses, and records how fast.
func (o *scaleOutput) connectAll(env *benchEnv) error {
	var ips []string
	for i := range o.SourceAddrs {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i+2))
	}
	per := (o.Sessions + o.ClientProcs - 1) / o.ClientProcs
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	fmt.Fprintf(os.Stderr, "connecting %d sessions from %d processes…\n", o.Sessions, o.ClientProcs)
	begin := time.Now()
	for first := 0; first < o.Sessions; first += per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := startWorker("clients", "--mode", o.Transport, "--addr", env.clientAddrs(o.Transport), "--prefix", "s",
				"--first", strconv.Itoa(first), "--count", strconv.Itoa(min(per, o.Sessions-first)),
				"--local-ips", strings.Join(ips, ","), "--read-buffer", "4096")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			env.workers = append(env.workers, w)
			o.Connected += w.ready.Connected
			if w.ready.Failed > 0 {
				errs = append(errs, fmt.Errorf("%d sessions failed to connect: %s", w.ready.Failed, w.ready.Error))
			}
		}()
	}
	wg.Wait()
	o.ConnectSeconds = time.Since(begin).Seconds()
	o.ConnectsPerSecond = float64(o.Connected) / o.ConnectSeconds
	return errors.Join(errs...)
}

// perSession works out the memory a connected session costs the edge, the
// NATS server and the kernel, against the figures from before they
// connected, and checks that the edge holds every session.
func (o *scaleOutput) perSession(env *benchEnv, before sample, kernelBefore int64) error {
	after := env.sample()
	kernelAfter, err := kernelMemory()
	if err != nil {
		return err
	}
	n := float64(o.Connected)
	o.EdgeRSSBytes = after.edge[0].rss
	o.EdgePerSession = (after.edge[0].rss - before.edge[0].rss) / n
	o.GoroutinesPerSess = (after.edge[0].routines - before.edge[0].routines) / n
	o.NATSPerSession = float64(after.natsRSS-before.natsRSS) / n
	o.KernelPerSession = float64(kernelAfter-kernelBefore) / n
	if after.edge[0].sessions != n {
		return fmt.Errorf("the edge holds %.0f sessions, the clients %d", after.edge[0].sessions, o.Connected)
	}
	return nil
}

// drainEdge publishes queued pushes per session first, if asked, then
// stops the edge with SIGTERM, times its drain, and gathers how the
// clients were closed and where the queued pushes went.
func (o *scaleOutput) drainEdge(env *benchEnv, queued int) error {
	if queued > 0 {
		o.Queued = &drainAccount{}
		if err := o.publishEach(env, queued); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "draining the edge (SIGTERM)…")
	took, err := env.edge.terminate(time.Minute)
	env.edge = nil
	if err != nil {
		return err
	}
	o.DrainSeconds = took.Seconds()
	if err := o.closeReasons(env); err != nil {
		return err
	}
	if o.Queued != nil {
		return o.account(env)
	}
	return nil
}

// closeReasons waits for every client to be closed and counts the close
// reasons they got.
func (o *scaleOutput) closeReasons(env *benchEnv) error {
	o.Closed = map[string]int{}
	for _, w := range env.workers {
		r, err := w.call("await-close")
		if err != nil {
			return err
		}
		for k, v := range r.Closed {
			o.Closed[k] += v
		}
	}
	return nil
}

// publishEach publishes n plain pushes to every session, as fast as it
// can, after zeroing the clients' counters.
func (o *scaleOutput) publishEach(env *benchEnv, n int) error {
	for _, w := range env.workers {
		if _, err := w.call("reset"); err != nil {
			return err
		}
	}
	nc, err := nats.Connect(env.natsURL, nats.Name("pushbench scale"))
	if err != nil {
		return err
	}
	defer nc.Close()
	payload := make([]byte, 128)
	for range n {
		for i := range o.Sessions {
			binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
			if err := nc.Publish(fmt.Sprintf("push.s%d.high", i), payload); err != nil {
				return err
			}
			o.Queued.Sent++
		}
	}
	return nc.Flush()
}

// account counts what the clients received and what the dead-letter
// stream holds after the drain.
func (o *scaleOutput) account(env *benchEnv) error {
	for _, w := range env.workers {
		r, err := w.call("report")
		if err != nil {
			return err
		}
		o.Queued.Delivered += r.Received
	}
	nc, err := nats.Connect(env.natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := dlq.Open(ctx, js, protocol.DefaultPrefix)
	if err != nil {
		return err
	}
	st, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	o.Queued.Dead = st.ByReason
	o.Queued.Missing = int64(o.Queued.Sent) - int64(o.Queued.Delivered) - int64(st.Messages)
	return nil
}

// kernelMemory is the kernel's memory that grows with connections: slab
// caches (sockets, inodes, files, epoll entries; /proc/meminfo Slab) and TCP
// buffers (/proc/net/sockstat, in pages).
func kernelMemory() (int64, error) {
	var total int64
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Slab:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, err
			}
			total += kb << 10
		}
	}
	if b, err = os.ReadFile("/proc/net/sockstat"); err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "mem" {
				pages, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					return 0, err
				}
				total += pages * int64(os.Getpagesize())
			}
		}
	}
	return total, nil
}

func (o *scaleOutput) print(w io.Writer) {
	fmt.Fprintf(w, "\npushbench scale: %s idle sessions over %s, clients in %d processes from %d source addresses\n\n",
		group(float64(o.Sessions)), o.Transport, o.ClientProcs, o.SourceAddrs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "connected\t%s in %.2f s: %s sessions/s\n", group(float64(o.Connected)), o.ConnectSeconds, group(o.ConnectsPerSecond))
	fmt.Fprintf(tw, "edge RSS\t%s; %s B per session, %.2f goroutines per session\n", mib(o.EdgeRSSBytes), group(o.EdgePerSession), o.GoroutinesPerSess)
	fmt.Fprintf(tw, "NATS server RSS\t%s B per session (its subscription)\n", group(o.NATSPerSession))
	fmt.Fprintf(tw, "kernel memory\t%s B per session (slab and TCP buffers of both socket ends; in no process's RSS)\n", group(o.KernelPerSession))
	if o.DrainSeconds > 0 {
		var parts []string
		for k, v := range o.Closed {
			parts = append(parts, fmt.Sprintf("%s %s", k, group(float64(v))))
		}
		fmt.Fprintf(tw, "drain on SIGTERM\t%.2f s; clients closed with: %s\n", o.DrainSeconds, strings.Join(parts, ", "))
	}
	if q := o.Queued; q != nil {
		var dead []string
		for k, v := range q.Dead {
			dead = append(dead, fmt.Sprintf("%s %s", k, group(float64(v))))
		}
		fmt.Fprintf(tw, "pushes sent before SIGTERM\t%s: delivered %s, dead-lettered %s, missing %d\n", group(float64(q.Sent)),
			group(float64(q.Delivered)), dash(len(dead) > 0, strings.Join(dead, ", ")), q.Missing)
	}
	tw.Flush()
	const target = 100_000
	fmt.Fprintf(w, "\nper node at %s sessions, from the per-session figures: edge %s, NATS server %s, kernel %s\n",
		group(target), mib(o.EdgeRSSBytes-float64(o.Connected)*o.EdgePerSession+target*o.EdgePerSession),
		mib(target*o.NATSPerSession), mib(target*o.KernelPerSession))
}
