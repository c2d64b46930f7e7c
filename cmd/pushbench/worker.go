package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
)

// Worker processes are pushbench itself, started by the coordinator with
// the hidden command "worker": a NATS server, or a set of clients. They
// take one command per line on stdin and answer each with one JSON line on
// stdout (a report); the first line they print says they are ready. EOF on
// stdin ends them.

// report is a worker's answer.
type report struct {
	Event          string                 `json:"event"` // ready, stats, report, closed, error
	Error          string                 `json:"error,omitempty"`
	URL            string                 `json:"url,omitempty"`       // nats: where it listens
	Connected      int                    `json:"connected,omitempty"` // clients: sessions held
	Failed         int                    `json:"failed,omitempty"`    // clients: dials that failed
	ConnectSeconds float64                `json:"connect_seconds,omitempty"`
	Received       uint64                 `json:"received"`
	Bytes          uint64                 `json:"bytes"`
	Dropped        uint64                 `json:"dropped,omitempty"` // raw: messages NATS dropped
	LastNanos      int64                  `json:"last_ns,omitempty"` // when the last push arrived
	Closed         map[string]int         `json:"closed,omitempty"`  // close reasons the clients got
	Hist           *hdrhistogram.Snapshot `json:"hist,omitempty"`
}

func runWorker(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "pushbench worker: want nats or clients")
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	switch args[0] {
	case "nats":
		return natsWorker(out)
	case "clients":
		return clientsWorker(args[1:], out)
	}
	fmt.Fprintf(os.Stderr, "pushbench worker: unknown role %q\n", args[0])
	return 2
}

// natsWorker runs a JetStream-enabled nats-server on a free loopback port
// until stdin closes.
func natsWorker(out *json.Encoder) int {
	dir, err := os.MkdirTemp("", "pushbench-nats-")
	if err != nil {
		return workerFail(out, err)
	}
	defer os.RemoveAll(dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: dir, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		return workerFail(out, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return workerFail(out, errors.New("nats-server did not start"))
	}
	_ = out.Encode(report{Event: "ready", URL: s.ClientURL()})
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		_ = out.Encode(report{Event: "stats"})
	}
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

func workerFail(out *json.Encoder, err error) int {
	_ = out.Encode(report{Event: "error", Error: err.Error()})
	return 1
}

// recorder counts what clients receive and keeps a latency histogram (µs,
// from the send time in the payload's first 8 bytes), sharded to keep
// readers from contending.
type recorder struct {
	received atomic.Uint64
	bytes    atomic.Uint64
	last     atomic.Int64
	shards   [16]struct {
		sync.Mutex
		h *hdrhistogram.Histogram
	}
}

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.shards {
		r.shards[i].h = newHistogram()
	}
	return r
}

// newHistogram covers 1 µs to 5 minutes at 3 significant figures.
func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 300_000_000, 3) }

func (r *recorder) record(shard int, payload []byte) {
	now := time.Now().UnixNano()
	r.received.Add(1)
	r.bytes.Add(uint64(len(payload)))
	r.last.Store(now)
	if len(payload) < 8 {
		return
	}
	us := (now - int64(binary.BigEndian.Uint64(payload))) / 1000
	s := &r.shards[shard%len(r.shards)]
	s.Lock()
	_ = s.h.RecordValue(max(us, 1))
	s.Unlock()
}

func (r *recorder) reset() {
	r.received.Store(0)
	r.bytes.Store(0)
	r.last.Store(0)
	for i := range r.shards {
		s := &r.shards[i]
		s.Lock()
		s.h.Reset()
		s.Unlock()
	}
}

func (r *recorder) snapshot() *hdrhistogram.Snapshot {
	all := newHistogram()
	for i := range r.shards {
		s := &r.shards[i]
		s.Lock()
		all.Merge(s.h)
		s.Unlock()
	}
	return all.Export()
}

// clientsWorker holds sessions <prefix><first>…<prefix><first+count-1>:
// edge clients over tcp or ws, or, in raw mode, a plain NATS subscriber
// with one subscription per session subject (push.<session>.*), or, in
// rawfan mode, one NATS connection per member subscribed to rawfan.*.
func clientsWorker(args []string, out *json.Encoder) int {
	fs := flag.NewFlagSet("pushbench worker clients", flag.ContinueOnError)
	mode := fs.String("mode", "tcp", "tcp, ws, raw or rawfan (one NATS connection per member of the fan-out)")
	addrs := fs.String("addr", "", "edge addresses (tcp://, ws://), comma-separated, or the NATS URL in raw mode")
	prefix := fs.String("prefix", "b", "session name prefix")
	first := fs.Int("first", 0, "first session number")
	count := fs.Int("count", 1, "sessions")
	localIPs := fs.String("local-ips", "", "source addresses to spread connections over, comma-separated")
	parallel := fs.Int("parallel", 64, "dials in flight")
	readBuf := fs.Int("read-buffer", 16<<10, "client read buffer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rec := newRecorder()
	var h holder
	var err error
	switch *mode {
	case "raw":
		h, err = holdRaw(*addrs, *prefix, *first, *count, rec)
	case "rawfan":
		h, err = holdRawFan(*addrs, *first, *count, rec)
	default:
		h, err = holdClients(strings.Split(*addrs, ","), *prefix, *first, *count, *localIPs, *parallel, *readBuf, rec)
	}
	if err != nil {
		return workerFail(out, err)
	}
	ready := h.status()
	ready.Event = "ready"
	_ = out.Encode(ready)
	serveClientCommands(h, rec, out)
	h.close()
	return 0
}

// serveClientCommands answers pushbench's commands on stdin, one a line,
// until stdin ends.
func serveClientCommands(h holder, rec *recorder, out *json.Encoder) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "stats":
			_ = out.Encode(report{Event: "stats", Received: rec.received.Load(), Bytes: rec.bytes.Load()})
		case "reset":
			rec.reset()
			_ = out.Encode(report{Event: "stats"})
		case "report":
			r := h.status()
			r.Event, r.Received, r.Bytes, r.LastNanos, r.Hist = "report", rec.received.Load(), rec.bytes.Load(), rec.last.Load(), rec.snapshot()
			_ = out.Encode(r)
		case "await-close":
			r := h.awaitClose(time.Minute)
			r.Event = "closed"
			_ = out.Encode(r)
		default:
			_ = out.Encode(report{Event: "error", Error: fmt.Sprintf("unknown command %q", sc.Text())})
		}
	}
}

// holder is a set of held sessions.
type holder interface {
	status() report
	awaitClose(limit time.Duration) report
	close()
}

type clientSet struct {
	conns   []*client.Conn
	failed  int
	firstEr string
	took    time.Duration
}

func holdClients(addrs []string, prefix string, first, count int, localIPs string, parallel, readBuf int, rec *recorder) (*clientSet, error) {
	var locals []net.Addr
	for ip := range strings.SplitSeq(localIPs, ",") {
		if ip == "" {
			continue
		}
		a := net.ParseIP(ip)
		if a == nil {
			return nil, fmt.Errorf("--local-ips: %q is not an IP address", ip)
		}
		locals = append(locals, &net.TCPAddr{IP: a})
	}
	cs := &clientSet{conns: make([]*client.Conn, count)}
	var mu sync.Mutex
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range count {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := client.Options{Session: fmt.Sprintf("%s%d", prefix, first+i), ReadBufferSize: readBuf,
				OnPush: func(f client.Frame) { rec.record(i, f.Payload) }}
			if len(locals) > 0 {
				o.LocalAddr = locals[i%len(locals)]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, addrs[i%len(addrs)], o)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if cs.failed++; cs.firstEr == "" {
					cs.firstEr = err.Error()
				}
				return
			}
			cs.conns[i] = c
		}()
	}
	wg.Wait()
	cs.took = time.Since(begin)
	return cs, nil
}

func (cs *clientSet) status() report {
	n := 0
	for _, c := range cs.conns {
		if c != nil {
			n++
		}
	}
	return report{Connected: n, Failed: cs.failed, Error: cs.firstEr, ConnectSeconds: cs.took.Seconds()}
}

// awaitClose waits for the server to close every connection and counts the
// close reasons.
func (cs *clientSet) awaitClose(limit time.Duration) report {
	deadline := time.After(limit)
	reasons := map[string]int{}
	for _, c := range cs.conns {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
			var ce *client.CloseError
			if errors.As(c.Err(), &ce) {
				reasons[string(ce.Reason)]++
			} else {
				reasons["no close frame"]++
			}
		case <-deadline:
			reasons["still open"]++
		}
	}
	return report{Closed: reasons}
}

func (cs *clientSet) close() {
	for _, c := range cs.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

type rawSet struct {
	nc   *nats.Conn
	subs []*nats.Subscription
	took time.Duration
}

// holdRaw subscribes one NATS connection to every session's subjects, all
// into one channel read by one goroutine: how the edge itself takes pushes
// in, without the edge.
func holdRaw(url, prefix string, first, count int, rec *recorder) (*rawSet, error) {
	begin := time.Now()
	nc, err := nats.Connect(url, nats.Name("pushbench raw subscriber"), nats.NoEcho())
	if err != nil {
		return nil, err
	}
	ch := make(chan *nats.Msg, 1<<16)
	rs := &rawSet{nc: nc}
	for i := range count {
		sub, err := nc.ChanSubscribe(fmt.Sprintf("push.%s%d.*", prefix, first+i), ch)
		if err != nil {
			nc.Close()
			return nil, err
		}
		rs.subs = append(rs.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	rs.took = time.Since(begin)
	go func() {
		for m := range ch {
			rec.record(0, m.Data)
		}
	}()
	return rs, nil
}

func (rs *rawSet) status() report {
	var dropped uint64
	for _, s := range rs.subs {
		if d, err := s.Dropped(); err == nil {
			dropped += uint64(d)
		}
	}
	return report{Connected: len(rs.subs), ConnectSeconds: rs.took.Seconds(), Dropped: dropped}
}

func (rs *rawSet) awaitClose(time.Duration) report { return report{} }

func (rs *rawSet) close() { rs.nc.Close() }
