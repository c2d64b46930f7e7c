package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// loadSpec is what the producers do.
type loadSpec struct {
	sessions  int
	producers int
	rate      float64 // pushes/s in all; 0: as fast as they can
	duration  time.Duration
	payload   int
	lowShare  float64 // share of pushes sent low
	publish   string  // raw, fast, acked, or received (the receipts phase)
	receipts  bool    // add a phase pushing with Push-Ack: received
	inflight  int     // acked: pushes waiting for their ack per producer
	transport string
	clients   int  // client processes
	fanout    bool // every push goes to one group of all the sessions
}

func (s loadSpec) describe() string {
	rate := "unpaced"
	if s.rate > 0 {
		rate = fmt.Sprintf("%s pushes/s", group(s.rate))
	}
	receipts := ""
	if s.receipts {
		receipts = fmt.Sprintf(", then Push-Ack: received (%d in flight per producer)", s.inflight)
	}
	fan := ""
	if s.fanout {
		fan = fmt.Sprintf(", fan-out: each push to one group of all %d", s.sessions)
	}
	return fmt.Sprintf("%d sessions over %s, %d producer(s), %s, %d B payload, %.0f%% low, %s publish%s%s, %s each",
		s.sessions, s.transport, s.producers, rate, s.payload, 100*s.lowShare, s.publish, receipts, fan, s.duration)
}

// loadCmd is pushbench load.
type loadCmd struct {
	Sessions    int           `default:"1000" help:"Client sessions."`
	Transport   string        `default:"tcp" enum:"tcp,ws" help:"Client transport: tcp or ws."`
	ClientProcs int           `default:"1" help:"Processes the clients are spread over."`
	Producers   int           `default:"1" help:"Producer connections."`
	Rate        float64       `help:"Pushes per second in all; 0: as fast as the producers can."`
	Duration    time.Duration `default:"10s" help:"How long the producers publish."`
	Payload     int           `default:"128" help:"Payload bytes (at least 8: the send time)."`
	Low         float64       `help:"Share of pushes sent with low priority, 0 to 1."`
	Publish     string        `default:"fast" enum:"raw,fast,acked" help:"raw (plain NATS publish), fast (producer client Publish) or acked (producer client Push, waiting for enqueued)."`
	Inflight    int           `default:"64" help:"With --publish acked or --ack received: pushes awaiting their ack per producer."`
	Ack         string        `default:"enqueued" enum:"enqueued,received" help:"received: after the --publish phase, one more with the same sessions, rate and duration pushing with Push-Ack: received (producer client Push, --inflight per producer), each confirmed by its client, its figures beside the others; enqueued: no such phase."`
	Fanout      bool          `help:"Fan-out: the sessions are the members of one group and every push goes to the group (--publish raw or fast); the baseline is one NATS connection per member subscribed to one shared subject, NATS doing the fan-out. Sent counts the copies due: pushes × sessions."`
	Baseline    bool          `default:"true" negatable:"" help:"Measure raw NATS publish -> subscribe first."`
	Edge        string        `placeholder:"URLS" help:"Edge client addresses (tcp://host:port or ws://host:port/), comma-separated; empty: start one."`
	Admin       string        `placeholder:"URLS" help:"With --edge: the edges' admin addresses, for CPU, memory and dead letters."`
	NATS        string        `name:"nats" placeholder:"URL" help:"With --edge: the NATS server the edges use."`
	edgeFlags   `embed:""`
	JSON        bool   `name:"json" help:"Print the results as JSON."`
	Profile     string `placeholder:"DIR" help:"Write the started edge's CPU profile (over the load) and heap profile (after it) into this folder."`
}

// Help is shown under the command's usage.
func (loadCmd) Help() string {
	return `Pushes to S client sessions from P producer connections for a while and reports delivered
pushes/s, latency from the producer's send to the client's read (HDR histogram), dead letters
by reason, the edge's and the NATS server's CPU and the edge's memory per session. First, the
same sessions, payload, rate and duration go over plain NATS - plain publishes to one subscriber
holding the same subjects on the same server - as the baseline the fabric's figures are divided
by (the baseline always publishes plainly, whatever --publish says).

With no --edge, pushbench starts a NATS server and an edge node (the edge binary next to
pushbench, or on PATH) on loopback, each in its own process; the clients run in child processes.`
}

func (c *loadCmd) spec() loadSpec {
	return loadSpec{sessions: c.Sessions, producers: c.Producers, rate: c.Rate, duration: c.Duration, payload: c.Payload,
		lowShare: c.Low, publish: c.Publish, receipts: c.Ack == protocol.AckReceived, inflight: c.Inflight, transport: c.Transport, clients: c.ClientProcs,
		fanout: c.Fanout}
}

// Validate refuses a load that cannot run.
func (c *loadCmd) Validate() error {
	spec := c.spec()
	return spec.validate(c.Edge, c.NATS)
}

func (c *loadCmd) run() int {
	spec, ef := c.spec(), c.edgeFlags
	if c.Profile != "" {
		ef.EdgeFlag = append(ef.EdgeFlag, "--pprof")
	}
	env, err := newBenchEnv(c.Edge, c.Admin, c.NATS, ef)
	if err != nil {
		return fail("load", err)
	}
	defer env.close()
	env.profileDir = c.Profile
	out, err := env.load(spec, c.Baseline)
	if err != nil {
		return fail("load", err)
	}
	if c.JSON {
		return printJSON(out)
	}
	out.print(os.Stdout)
	return 0
}

// load measures the raw NATS baseline, if asked, then the fabric.
func (env *benchEnv) load(spec loadSpec, baseline bool) (loadOutput, error) {
	out := loadOutput{Spec: spec.describe()}
	if baseline {
		r, err := env.phase("raw NATS", spec, true)
		if err != nil {
			return out, err
		}
		out.Raw = &r
	}
	r, err := env.phase("pushfabric", spec, false)
	if err != nil {
		return out, err
	}
	out.Fabric = &r
	if spec.receipts {
		rs := spec
		rs.publish = receivedMode
		r, err := env.phase("receipts", rs, false)
		if err != nil {
			return out, err
		}
		out.Receipts = &r
	}
	out.finish()
	return out, nil
}

// receivedMode is the receipts phase's way of publishing: the producer
// client's Push with Push-Ack: received.
const receivedMode = "received"

func (s *loadSpec) validate(edges, natsURL string) error {
	switch {
	case s.sessions < 1 || s.producers < 1 || s.clients < 1 || s.inflight < 1:
		return errors.New("--sessions, --producers, --client-procs and --inflight must be at least 1")
	case s.transport != "tcp" && s.transport != "ws":
		return fmt.Errorf("--transport %q: want tcp or ws", s.transport)
	case s.publish != "raw" && s.publish != "fast" && s.publish != "acked":
		return fmt.Errorf("--publish %q: want raw, fast or acked", s.publish)
	case s.payload < 8:
		return errors.New("--payload must be at least 8 bytes")
	case s.lowShare < 0 || s.lowShare > 1:
		return errors.New("--low must be between 0 and 1")
	case s.duration <= 0 || s.rate < 0:
		return errors.New("--duration must be positive and --rate not negative")
	case s.fanout && (s.publish == "acked" || s.receipts):
		return errors.New("--fanout publishes raw or fast: a group push is acknowledged per node, not per push")
	case edges != "" && natsURL == "":
		return errors.New("--edge needs --nats, the NATS server the edges use")
	}
	return nil
}

// benchEnv is the system under test: a NATS server and edges, started by
// the bench or given.
type benchEnv struct {
	natsURL string
	nats    *child // nil when given
	edge    *edgeChild
	edges   []string // given client addresses (tcp://…, ws://…)
	admins  []string
	workers []*child
	// profileDir, when set, gets the edge's profiles of the fabric phase.
	profileDir string
}

func newBenchEnv(edges, admins, natsURL string, ef edgeFlags) (*benchEnv, error) {
	env := &benchEnv{natsURL: natsURL}
	if edges != "" {
		env.edges = strings.Split(edges, ",")
		if admins != "" {
			env.admins = strings.Split(admins, ",")
		}
		return env, nil
	}
	bin, err := findEdge(ef.EdgeBin)
	if err != nil {
		return nil, err
	}
	if env.nats, err = startWorker("nats"); err != nil {
		return nil, err
	}
	env.natsURL = env.nats.ready.URL
	if env.edge, err = startEdge(bin, env.natsURL, ef.EdgeFlag, ef.EdgeEnv); err != nil {
		env.close()
		return nil, err
	}
	env.admins = []string{env.edge.addrs["admin"]}
	return env, nil
}

func (env *benchEnv) close() {
	env.stopWorkers()
	if env.edge != nil {
		_, _ = env.edge.terminate(30 * time.Second)
	}
	if env.nats != nil {
		env.nats.stop()
	}
}

func (env *benchEnv) stopWorkers() {
	for _, w := range env.workers {
		w.stop()
	}
	env.workers = nil
}

// clientAddrs are the edges' client addresses for a transport.
func (env *benchEnv) clientAddrs(transport string) string {
	if env.edge == nil {
		return strings.Join(env.edges, ",")
	}
	if transport == "ws" {
		return "ws://" + env.edge.addrs["websocket"] + "/"
	}
	return "tcp://" + env.edge.addrs["tcp"]
}

// startClients spreads sessions prefix0… over spec.clients worker processes.
func (env *benchEnv) startClients(spec loadSpec, raw bool, prefix string) error {
	per := (spec.sessions + spec.clients - 1) / spec.clients
	for first := 0; first < spec.sessions; first += per {
		args := []string{"clients", "--prefix", prefix, "--first", strconv.Itoa(first), "--count", strconv.Itoa(min(per, spec.sessions-first))}
		switch {
		case raw && spec.fanout:
			args = append(args, "--mode", "rawfan", "--addr", env.natsURL)
		case raw:
			args = append(args, "--mode", "raw", "--addr", env.natsURL)
		default:
			args = append(args, "--mode", spec.transport, "--addr", env.clientAddrs(spec.transport))
		}
		w, err := startWorker(args...)
		if err != nil {
			return err
		}
		env.workers = append(env.workers, w)
		if w.ready.Failed > 0 {
			return fmt.Errorf("%d of %d sessions failed to connect: %s", w.ready.Failed, w.ready.Failed+w.ready.Connected, w.ready.Error)
		}
	}
	return nil
}

// sample is the system's counters at one moment.
type sample struct {
	at       time.Time
	edge     []edgeMetrics
	natsCPU  float64
	natsRSS  int64
	received uint64
	// CPU seconds of the client processes and of pushbench itself (the
	// producers, mostly).
	clientsCPU, selfCPU float64
}

func (env *benchEnv) sample() sample {
	s := sample{at: time.Now()}
	for _, a := range env.admins {
		m, err := scrapeEdge(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pushbench: scrape", a+":", err)
		}
		s.edge = append(s.edge, m)
	}
	if env.nats != nil {
		s.natsCPU, s.natsRSS, _ = procStat(env.nats.pid())
	}
	for _, w := range env.workers {
		if r, err := w.call("stats"); err == nil {
			s.received += r.Received
		}
		if cpu, _, err := procStat(w.pid()); err == nil {
			s.clientsCPU += cpu
		}
	}
	s.selfCPU, _, _ = procStat(os.Getpid())
	return s
}

func (s sample) edgeSum(f func(edgeMetrics) float64) float64 {
	t := 0.0
	for _, m := range s.edge {
		t += f(m)
	}
	return t
}

// phase runs one measurement: clients up, load, settle, reports.
func (env *benchEnv) phase(name string, spec loadSpec, raw bool) (phaseResult, error) {
	defer env.stopWorkers()
	prefix := "b"
	switch {
	case raw:
		prefix = "raw"
	case spec.publish == receivedMode:
		prefix = "r"
	}
	res := phaseResult{Name: name, Dead: map[string]uint64{}}
	connected, err := env.connectPhase(&res, spec, raw, prefix)
	if err != nil {
		return phaseResult{}, err
	}
	ld := newLoad(spec, prefix, raw)
	if err := env.drive(name, ld); err != nil {
		return res, err
	}
	res.Sent = ld.sent.Load()
	if spec.fanout { // each push is due at every member
		res.Published, res.Sent = res.Sent, res.Sent*uint64(spec.sessions)
	}
	res.Dead[string(push.ReasonOffline)] = ld.offline.Load()
	last := env.settle(&res, ld, connected)
	hist, lastRecv, err := env.reports(&res)
	if err != nil {
		return res, err
	}
	res.addEdgeCounts(connected, last)
	res.count(ld.began, lastRecv)
	res.Latency = latencyOf(hist)
	if ld.acks.TotalCount() > 0 {
		l := latencyOf(ld.acks)
		res.AckLatency = &l
	}
	res.addCPU(connected, last, raw)
	return res, nil
}

// connectPhase starts the phase's clients and records what connecting them
// took: the time and, on the fabric, the edge's memory per session. It
// returns the sample taken once they are connected, which the phase's
// figures are counted from.
func (env *benchEnv) connectPhase(res *phaseResult, spec loadSpec, raw bool, prefix string) (sample, error) {
	before := env.sample()
	if err := env.startClients(spec, raw, prefix); err != nil {
		return sample{}, err
	}
	if spec.fanout && !raw {
		if err := joinAll(env.natsURL, prefix, spec.sessions); err != nil {
			return sample{}, err
		}
	}
	connected := env.sample()
	if !raw && env.admins != nil {
		res.EdgeRSSBytes = connected.edgeSum(func(m edgeMetrics) float64 { return m.rss })
		res.BytesPerSession = (res.EdgeRSSBytes - before.edgeSum(func(m edgeMetrics) float64 { return m.rss })) / float64(spec.sessions)
	}
	for _, w := range env.workers {
		res.ConnectSeconds = max(res.ConnectSeconds, w.ready.ConnectSeconds)
	}
	fmt.Fprintf(os.Stderr, "%s: %d sessions ready in %.2fs; pushing for %s\n", res.Name, spec.sessions, res.ConnectSeconds, spec.duration)
	return connected, nil
}

// drive runs the load, with progress on stderr and, if asked, the edge's
// profiles.
func (env *benchEnv) drive(name string, ld *load) error {
	stopProgress := env.progress(name, ld)
	profiled := env.profile(ld.raw, ld.spec.duration)
	err := ld.run(env.natsURL)
	stopProgress()
	if perr := profiled(); perr != nil {
		fmt.Fprintln(os.Stderr, "pushbench: profile:", perr)
	}
	return err
}

// settle waits until every push is delivered or dead-lettered, or nothing
// moves for 3 s, and returns the last sample. It records how long the
// edges took to write their dead letters.
func (env *benchEnv) settle(res *phaseResult, ld *load, connected sample) sample {
	var last sample
	deadOf := func(s sample) uint64 {
		return uint64(s.edgeSum(func(m edgeMetrics) float64 { return sum(m.dead) }) - connected.edgeSum(func(m edgeMetrics) float64 { return sum(m.dead) }))
	}
	writtenAt, lastWritten := time.Now(), uint64(0) // when the dead letters written last grew
	for moved, lastTotal := time.Now(), uint64(0); ; {
		last = env.sample()
		total := last.received + deadOf(last) + ld.offline.Load()
		written := uint64(last.edgeSum(func(m edgeMetrics) float64 { return m.written + m.lost }) -
			connected.edgeSum(func(m edgeMetrics) float64 { return m.written + m.lost }))
		if written != lastWritten {
			writtenAt, lastWritten = last.at, written
		}
		if total >= res.Sent && written >= deadOf(last) || time.Since(moved) > 3*time.Second {
			break
		}
		total += written
		if total != lastTotal {
			moved, lastTotal = time.Now(), total
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastWritten > 0 {
		res.DeadLetterSeconds = writtenAt.Sub(ld.began).Seconds()
	}
	return last
}

// reports gathers the client processes' reports into res: what they
// received and what NATS dropped. It returns their latency histograms
// merged, and when the last push arrived (Unix nanoseconds).
func (env *benchEnv) reports(res *phaseResult) (*hdrhistogram.Histogram, int64, error) {
	hist := newHistogram()
	var lastRecv int64
	for _, w := range env.workers {
		r, err := w.call("report")
		if err != nil {
			return nil, 0, err
		}
		res.Delivered += r.Received
		res.DroppedByNATS += r.Dropped
		lastRecv = max(lastRecv, r.LastNanos)
		if r.Hist != nil {
			hist.Merge(hdrhistogram.Import(r.Hist))
		}
	}
	return hist, lastRecv, nil
}

// addEdgeCounts adds what the edges counted between the two samples: dead
// letters by reason, slow-consumer events and drops, lost pushes, dead
// letters written.
func (res *phaseResult) addEdgeCounts(connected, last sample) {
	for i, m := range last.edge {
		for reason, v := range m.dead {
			if d := uint64(v - connected.edge[i].dead[reason]); d > 0 {
				res.Dead[reason] += d
			}
		}
		res.SlowConsumerEvents += m.slow - connected.edge[i].slow
		res.EdgeDropped += m.dropped - connected.edge[i].dropped
		res.Lost += m.lost - connected.edge[i].lost
		res.DeadLettersWritten += uint64(m.written - connected.edge[i].written)
		o := uint64(m.overflows - connected.edge[i].overflows)
		res.GroupOverflows += o
		res.GroupOverflowCopies += o * uint64(connected.edge[i].sessions)
	}
}

// count works out what is missing (sent, but neither delivered nor
// dead-lettered) and the delivered rate, from the first send (began) to
// the last delivery.
func (res *phaseResult) count(began time.Time, lastRecv int64) {
	if res.Dead[string(push.ReasonOffline)] == 0 {
		delete(res.Dead, string(push.ReasonOffline))
	}
	var dead uint64
	for _, v := range res.Dead {
		dead += v
	}
	dead += res.GroupOverflowCopies - res.GroupOverflows // a group letter is dead for every member on its node
	res.Missing = int64(res.Sent) - int64(res.Delivered) - int64(dead)
	if lastRecv > 0 {
		res.Seconds = time.Unix(0, lastRecv).Sub(began).Seconds()
		res.PushesPerSecond = float64(res.Delivered) / res.Seconds
	}
}

// addCPU records the CPU each process spent between the two samples; the
// baseline has no edge.
func (res *phaseResult) addCPU(connected, last sample, raw bool) {
	res.EdgeCPUSeconds = last.edgeSum(func(m edgeMetrics) float64 { return m.cpu }) - connected.edgeSum(func(m edgeMetrics) float64 { return m.cpu })
	res.NATSCPUSeconds = last.natsCPU - connected.natsCPU
	res.ClientsCPUSeconds = last.clientsCPU - connected.clientsCPU
	res.ProducerCPUSeconds = last.selfCPU - connected.selfCPU
	if raw {
		res.EdgeCPUSeconds = 0
	}
}

// profile starts fetching the edge's CPU profile over the load, if asked;
// the returned function waits for it and fetches a heap profile.
func (env *benchEnv) profile(raw bool, d time.Duration) (wait func() error) {
	if env.profileDir == "" || raw || len(env.admins) == 0 {
		return func() error { return nil }
	}
	base := "http://" + env.admins[0] + "/debug/pprof/"
	errc := make(chan error, 1)
	go func() {
		errc <- fetch(base+fmt.Sprintf("profile?seconds=%d", max(int(d.Seconds()), 1)), filepath.Join(env.profileDir, "edge-cpu.pprof"))
	}()
	return func() error {
		if err := <-errc; err != nil {
			return err
		}
		return fetch(base+"heap", filepath.Join(env.profileDir, "edge-heap.pprof"))
	}
}

func fetch(url, file string) error {
	r, err := http.Get(url)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, r.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r.Body); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", file)
	return f.Close()
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// progress prints sent and delivered per second to stderr every second.
func (env *benchEnv) progress(name string, ld *load) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prevSent, prevRecv, begin := uint64(0), uint64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var recv uint64
			for _, w := range env.workers {
				if r, err := w.call("stats"); err == nil {
					recv += r.Received
				}
			}
			sent := ld.sent.Load()
			fmt.Fprintf(os.Stderr, "  %s %3.0fs  sent %s (%s/s)  delivered %s (%s/s)\n", name, time.Since(begin).Seconds(),
				group(float64(sent)), group(float64(sent-prevSent)), group(float64(recv)), group(float64(recv-prevRecv)))
			prevSent, prevRecv = sent, recv
		}
	}()
	return func() { close(done); wg.Wait() }
}

// load is the producers' side of one phase.
type load struct {
	spec    loadSpec
	raw     bool // the baseline: plain publishes whatever spec.publish says
	high    []string
	low     []string
	names   []string
	next    atomic.Uint64 // the next push's number
	sent    atomic.Uint64
	offline atomic.Uint64 // dead-lettered by the producer client: no session
	began   time.Time
	mu      sync.Mutex
	err     error                   // guarded by mu
	acks    *hdrhistogram.Histogram // guarded by mu: each acked push's wait for its ack, µs
}

func newLoad(spec loadSpec, prefix string, raw bool) *load {
	l := &load{spec: spec, raw: raw, acks: newHistogram()}
	if spec.fanout {
		l.names = []string{fanGroup}
		for _, p := range []push.Priority{push.High, push.Low} {
			subject := protocol.GroupSubject(protocol.DefaultPrefix, fanGroup, p.String())
			if raw {
				subject = rawFanSubject + "." + p.String()
			}
			l.high, l.low = append(l.high, subject), append(l.low, subject)
		}
		l.high, l.low = l.high[:1], l.low[1:]
		return l
	}
	for i := range spec.sessions {
		name := fmt.Sprintf("%s%d", prefix, i)
		l.names = append(l.names, name)
		l.high = append(l.high, protocol.PushSubject(protocol.DefaultPrefix, name, push.High.String()))
		l.low = append(l.low, protocol.PushSubject(protocol.DefaultPrefix, name, push.Low.String()))
	}
	return l
}

func (l *load) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// producerConn is one producer connection, with the producer client on
// it unless the load publishes raw.
type producerConn struct {
	nc *nats.Conn
	p  *producer.Producer
}

// run publishes for spec.duration from spec.producers connections.
func (l *load) run(natsURL string) error {
	mode := l.spec.publish
	if l.raw {
		mode = "raw"
	}
	prods, err := connectProducers(natsURL, l.spec.producers, mode)
	if err != nil {
		return err
	}
	defer closeProducerConns(prods)
	l.began = time.Now()
	l.publishFrom(prods, mode)
	l.drain(prods)
	return l.err
}

// connectProducers connects n producers; on an error it closes those it
// connected.
func connectProducers(natsURL string, n int, mode string) ([]producerConn, error) {
	prods := make([]producerConn, 0, n)
	for i := range n {
		nc, err := nats.Connect(natsURL, nats.Name(fmt.Sprintf("pushbench producer %d", i)), nats.NoEcho())
		if err != nil {
			closeProducerConns(prods)
			return nil, err
		}
		prods = append(prods, producerConn{nc: nc})
		if mode != "raw" {
			p, err := producer.New(nc, producer.Options{Name: "pushbench"})
			if err != nil {
				closeProducerConns(prods)
				return nil, err
			}
			if err := p.Start(context.Background()); err != nil {
				closeProducerConns(prods)
				return nil, err
			}
			prods[i].p = p
		}
	}
	return prods, nil
}

// closeProducerConns closes the NATS connections, the last one first.
func closeProducerConns(prods []producerConn) {
	for i := len(prods) - 1; i >= 0; i-- {
		prods[i].nc.Close()
	}
}

// publishFrom publishes from every producer connection (acked: with
// spec.inflight publishers each) until spec.duration has passed.
func (l *load) publishFrom(prods []producerConn, mode string) {
	workersPer := 1
	if mode == "acked" || mode == receivedMode {
		workersPer = l.spec.inflight
	}
	end := l.began.Add(l.spec.duration)
	var wg sync.WaitGroup
	for _, pr := range prods {
		for range workersPer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.publishUntil(end, mode, pr.nc, pr.p)
			}()
		}
	}
	wg.Wait()
}

// drain closes the producer clients, counting the pushes they parked as
// offline, and flushes every connection: for up to drainLimit, as a NATS
// server fanning out to thousands of its own subscribers (the fan-out
// baseline) answers the flush only once it has caught up.
func (l *load) drain(prods []producerConn) {
	ctx, cancel := context.WithTimeout(context.Background(), drainLimit)
	defer cancel()
	for _, pr := range prods {
		if pr.p != nil {
			if err := pr.p.Stop(ctx); err != nil {
				l.fail(err)
			}
			l.offline.Add(pr.p.Stats().Offline)
		}
		if err := pr.nc.FlushWithContext(ctx); err != nil {
			l.fail(err)
		}
	}
}

// drainLimit bounds the wait for the producers' last pushes to reach
// NATS.
const drainLimit = 5 * time.Minute

func (l *load) publishUntil(end time.Time, mode string, nc *nats.Conn, p *producer.Producer) {
	acks := newHistogram()
	defer l.addAcks(acks)
	payload := make([]byte, l.spec.payload)
	var interval time.Duration
	if l.spec.rate > 0 {
		interval = time.Duration(float64(time.Second) / l.spec.rate)
	}
	lowEvery := 0.0
	if l.spec.lowShare > 0 {
		lowEvery = 1 / l.spec.lowShare
	}
	for {
		n := l.next.Add(1) - 1
		if interval > 0 {
			due := l.began.Add(time.Duration(n) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if !time.Now().Before(end) {
			return
		}
		i := int(n % uint64(len(l.names)))
		low := lowEvery > 0 && float64(n)-lowEvery*float64(int(float64(n)/lowEvery)) < 1
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		var err error
		switch {
		case mode == "raw" && low:
			err = nc.Publish(l.low[i], payload)
		case mode == "raw":
			err = nc.Publish(l.high[i], payload)
		case mode == "fast" && l.spec.fanout:
			err = p.PublishGroup(l.names[i], prio(low), payload)
		case mode == "fast":
			err = p.Publish(l.names[i], prio(low), payload)
		default:
			err = l.pushAcked(p, l.names[i], prio(low), payload, mode, acks)
		}
		if err != nil {
			l.fail(err)
			return
		}
		l.sent.Add(1)
	}
}

// pushAcked pushes with the producer client's Push and records how long
// the ack took. A dead ack is counted where the dead letter is: the edge's
// metrics, or the producer's offline count.
func (l *load) pushAcked(p *producer.Producer, session string, pr push.Priority, payload []byte, mode string, acks *hdrhistogram.Histogram) error {
	var opts []producer.Option
	if mode == receivedMode {
		opts = append(opts, producer.WithAck(protocol.AckReceived))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := p.Push(ctx, session, pr, payload, opts...)
	_ = acks.RecordValue(time.Since(start).Microseconds())
	return err
}

// addAcks merges one publisher's ack waits into the load's.
func (l *load) addAcks(h *hdrhistogram.Histogram) {
	l.mu.Lock()
	l.acks.Merge(h)
	l.mu.Unlock()
}

func prio(low bool) push.Priority {
	if low {
		return push.Low
	}
	return push.High
}

// edgeFlags say which edge binary to start and with what extra flags.
type edgeFlags struct {
	EdgeBin  string   `placeholder:"FILE" help:"Edge binary to start (default: next to pushbench, or on PATH)."`
	EdgeFlag []string `sep:"none" placeholder:"FLAG" help:"Extra flag for the edge it starts, e.g. --edge-flag=--queue-len=4096 (repeatable)."`
	EdgeEnv  []string `sep:"none" placeholder:"NAME=VALUE" help:"Extra environment variable for the edge it starts, e.g. --edge-env=GOGC=200 (repeatable)."`
}
