package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// soakCmd is pushbench soak.
type soakCmd struct {
	Duration  time.Duration `default:"1h" help:"How long the sessions churn and the producers push."`
	Sessions  int           `default:"2000" help:"Session names the churn cycles through, each held by one connection at a time (or two, for a moment, in a takeover)."`
	Rate      float64       `default:"200" help:"Pushes per second from all producers together, each to a random session, with Push-Ack: written."`
	Producers int           `default:"4" help:"Producers, each with a NATS connection of its own."`
	Inflight  int           `default:"256" help:"Pushes awaiting their acknowledgement at most, all producers together."`
	Lifetime  time.Duration `default:"30s" help:"A connection lives a random time up to this long, then ends by the churn's next move."`
	Burst     int           `default:"300" help:"Pushes of 8 KiB sent at once to a reader that stops reading when it connects: more than its socket and its queue (1 MiB by default) hold, so some are dead-lettered queue_full, and the connection is closed too_slow when it outlives the edge's write timeout."`
	Sample    time.Duration `default:"1m" help:"How often each edge's RSS, heap, goroutines, open files and queued pushes are sampled."`
	Settle    time.Duration `default:"2m" help:"After the churn, how long the edges get to come back to their baseline (checked each second)."`
	edgeFlags `embed:""`
	JSON      bool `name:"json" help:"Print the results as JSON."`
}

// Help is shown under the command's usage.
func (soakCmd) Help() string {
	return `Starts a NATS server (JetStream on) and two edge nodes sharing it, then for --duration churns
--sessions sessions over both: each connects to a random node over TCP or WebSocket, reads, and
ends one of five ways (closed, killed without a close frame, taken over from the other node,
a slow reader that a burst of pushes overflows, gone for a while), while producers push at a
steady --rate with Push-Ack: written. Every --sample it records each edge's RSS, heap,
goroutines, open files, sessions and queued pushes. At the end it accounts for every push
(published = written + dead-lettered + unacknowledged, nothing else, none lost on the edges) and
checks that each edge, with its clients gone, is back to its idle baseline: goroutines and open
files within 10 of it, the heap after a collection within 16 MiB, RSS within max(64 MiB, the
baseline). Exit status 0 when both hold, 1 when either does not.`
}

// Validate refuses a soak that cannot run.
func (c *soakCmd) Validate() error {
	switch {
	case c.Duration <= 0 || c.Sample <= 0 || c.Lifetime <= 0 || c.Settle <= 0:
		return errors.New("--duration, --sample, --lifetime and --settle must be positive")
	case c.Sessions < 1 || c.Producers < 1 || c.Inflight < 1 || c.Burst < 0:
		return errors.New("--sessions, --producers and --inflight must be at least 1, --burst at least 0")
	case c.Rate <= 0:
		return fmt.Errorf("--rate %v: want pushes per second, more than 0", c.Rate)
	}
	return nil
}

// soakEdges is how many edge nodes the soak runs.
const soakEdges = 2

// soakRun is one soak's state.
type soakRun struct {
	cmd   *soakCmd
	env   *benchEnv
	edges []*edgeChild
	prods []producerConn
	push  chan soakPush // pushes to send, from the rate and the bursts
	stop  chan struct{} // closed when the churn ends
	// bursts are the slow readers' bursts being handed to the pushers:
	// push closes after them.
	bursts sync.WaitGroup
	out    soakOutput

	// The producers' outcomes.
	published, written, unacked, failed atomic.Uint64
	mu                                  sync.Mutex // guards dead and firstErr
	dead                                map[string]uint64
	firstErr                            string
	// The churn's moves, counted.
	moves [soakMoves]atomic.Uint64
}

// The churn's moves: how a connection ends.
const (
	moveClose = iota
	moveKill
	moveTakeover
	moveSlow
	moveAway
	soakMoves
)

var moveNames = [soakMoves]string{"closed", "killed", "taken_over", "slow_burst", "away"}

// moveWeights are how often each move is made, in percent: a slow reader
// with its burst costs the most, so it is the rarest.
var moveWeights = [soakMoves]int{40, 20, 20, 4, 16}

// pickMove picks the next move by moveWeights.
func pickMove() int {
	n := rand.IntN(100)
	for m, w := range moveWeights {
		if n < w {
			return m
		}
		n -= w
	}
	return moveClose
}

// soakSample is one edge at one moment.
type soakSample struct {
	Elapsed    float64 `json:"elapsed_seconds"`
	Edge       string  `json:"edge"`
	Sessions   float64 `json:"sessions"`
	RSS        float64 `json:"rss_bytes"`
	Heap       float64 `json:"heap_bytes"` // allocated, live or not yet collected
	Goroutines float64 `json:"goroutines"`
	Files      float64 `json:"open_files"`
	Queued     int     `json:"queued_pushes"`
}

// soakOutput is what pushbench soak prints.
type soakOutput struct {
	Duration   float64           `json:"duration_seconds"`
	Sessions   int               `json:"sessions"`
	Rate       float64           `json:"rate"`
	Baseline   []soakSample      `json:"baseline"`
	Samples    []soakSample      `json:"samples"`
	Settled    []soakSample      `json:"settled"`
	Published  uint64            `json:"published"`
	Written    uint64            `json:"written"`
	Dead       map[string]uint64 `json:"dead"`
	Unacked    uint64            `json:"unacknowledged"`
	Failed     uint64            `json:"failed"`
	FirstError string            `json:"first_error,omitempty"`
	EdgeLost   float64           `json:"edge_lost"`
	Moves      map[string]uint64 `json:"moves"`
	Accounted  bool              `json:"accounted"`
	Baselined  bool              `json:"back_to_baseline"`
	Problems   []string          `json:"problems,omitempty"`
}

func (c *soakCmd) run() int {
	r := &soakRun{cmd: c, push: make(chan soakPush, c.Inflight), stop: make(chan struct{}), dead: map[string]uint64{}}
	r.out = soakOutput{Duration: c.Duration.Seconds(), Sessions: c.Sessions, Rate: c.Rate}
	if err := r.start(); err != nil {
		r.close()
		return fail("soak", err)
	}
	err := r.soak()
	r.close()
	if err != nil {
		return fail("soak", err)
	}
	if c.JSON {
		printJSON(r.out)
	} else {
		r.out.print(os.Stdout)
	}
	if !r.out.Accounted || !r.out.Baselined {
		return 1
	}
	return 0
}

// start starts NATS, both edges and the producers, and takes the
// baseline.
func (r *soakRun) start() error {
	bin, err := findEdge(r.cmd.EdgeBin)
	if err != nil {
		return err
	}
	r.env = &benchEnv{}
	if r.env.nats, err = startWorker("nats"); err != nil {
		return err
	}
	for i := range soakEdges {
		// --pprof: settle asks for a collection before it reads the heap.
		extra := append([]string{"--node", fmt.Sprintf("edge%d", i+1), "--pprof"}, r.cmd.EdgeFlag...)
		e, err := startEdge(bin, r.env.nats.ready.URL, extra, r.cmd.EdgeEnv)
		if err != nil {
			return fmt.Errorf("edge%d: %w", i+1, err)
		}
		r.edges = append(r.edges, e)
	}
	if r.prods, err = connectProducers(r.env.nats.ready.URL, r.cmd.Producers, "acked"); err != nil {
		return err
	}
	r.out.Baseline = r.sampleAll(time.Now())
	return nil
}

// close stops the producers, the edges and NATS.
func (r *soakRun) close() {
	for _, p := range r.prods {
		if p.p != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = p.p.Stop(ctx)
			cancel()
		}
	}
	closeProducerConns(r.prods)
	for _, e := range r.edges {
		_, _ = e.terminate(30 * time.Second)
	}
	if r.env != nil && r.env.nats != nil {
		r.env.nats.stop()
	}
}

// soak churns and pushes for the duration, sampling, then lets the edges
// settle and accounts.
func (r *soakRun) soak() error {
	began := time.Now()
	var churn, pushers sync.WaitGroup
	for i := range r.cmd.Sessions {
		churn.Go(func() { r.churn(fmt.Sprintf("soak%d", i)) })
	}
	for i := range r.cmd.Inflight {
		pushers.Go(func() { r.pusher(r.prods[i%len(r.prods)].p) })
	}
	pace := make(chan struct{})
	go func() { r.pace(began); close(pace) }()
	tick := time.NewTicker(r.cmd.Sample)
	for end := time.After(r.cmd.Duration); ; {
		select {
		case <-tick.C:
			r.out.Samples = append(r.out.Samples, r.sampleAll(began)...)
			r.progress(began)
			continue
		case <-end:
		}
		break
	}
	tick.Stop()
	close(r.stop)
	<-pace
	churn.Wait()
	r.bursts.Wait()
	close(r.push)
	pushers.Wait()
	r.settle(began)
	r.account()
	return nil
}

// pace feeds the pushers --rate sessions a second until the churn ends.
func (r *soakRun) pace(began time.Time) {
	interval := time.Duration(float64(time.Second) / r.cmd.Rate)
	for n := int64(1); ; n++ {
		next := began.Add(time.Duration(n) * interval)
		select {
		case <-r.stop:
			return
		case <-time.After(time.Until(next)):
		}
		r.enqueue(fmt.Sprintf("soak%d", rand.IntN(r.cmd.Sessions)))
	}
}

// soakPush is one push for the pushers to send.
type soakPush struct {
	session string
	big     bool // a burst's: 8 KiB, not 128 B
}

// enqueue hands one push for session to the pushers, unless the churn has
// ended; enqueueBig one of a burst.
func (r *soakRun) enqueue(session string) bool { return r.hand(soakPush{session: session}) }

func (r *soakRun) enqueueBig(session string) bool {
	return r.hand(soakPush{session: session, big: true})
}

func (r *soakRun) hand(p soakPush) bool {
	select {
	case r.push <- p:
		return true
	case <-r.stop:
		return false
	}
}

// pusher pushes to the sessions it is handed, waiting for each push's
// acknowledgement, and counts how each ended.
func (r *soakRun) pusher(p *producer.Producer) {
	small, big := make([]byte, 128), make([]byte, 8<<10)
	for sp := range r.push {
		r.published.Add(1)
		payload := small
		if sp.big {
			payload = big
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ack, err := p.Push(ctx, sp.session, push.Priority(rand.IntN(2)), payload, producer.WithAck(protocol.AckWritten))
		cancel()
		r.outcome(ack, err)
	}
}

// outcome counts one push's end.
func (r *soakRun) outcome(ack protocol.Ack, err error) {
	switch {
	case errors.Is(err, producer.ErrUnacknowledged):
		r.unacked.Add(1)
	case err != nil:
		r.failed.Add(1)
		r.note(err.Error())
	case ack.Status == protocol.StatusWritten:
		r.written.Add(1)
	case ack.Status == protocol.StatusDead:
		r.mu.Lock()
		r.dead[ack.Reason]++
		r.mu.Unlock()
	default:
		r.failed.Add(1)
		r.note(fmt.Sprintf("final acknowledgement %q", ack.Status))
	}
}

func (r *soakRun) note(s string) {
	r.mu.Lock()
	if r.firstErr == "" {
		r.firstErr = s
	}
	r.mu.Unlock()
}

// churn holds session with one connection after another until the churn
// ends, each ended by a random move.
func (r *soakRun) churn(session string) {
	// Spread the first connects over the first few seconds.
	if !r.wait(time.Duration(rand.Int64N(int64(5 * time.Second)))) {
		return
	}
	for {
		move := pickMove()
		r.moves[move].Add(1)
		lifetime := time.Duration(rand.Int64N(int64(r.cmd.Lifetime))) + time.Second
		var ok bool
		switch move {
		case moveKill:
			ok = r.killed(session, lifetime)
		case moveTakeover:
			ok = r.takeover(session, lifetime)
		case moveSlow:
			ok = r.slow(session, lifetime)
		case moveAway:
			ok = r.wait(lifetime)
		default:
			ok = r.hold(session, r.edgeAddr(-1), lifetime)
		}
		if !ok {
			return
		}
	}
}

// wait waits d, or until the churn ends; it reports whether the churn
// goes on.
func (r *soakRun) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	}
}

// edgeAddr is a client address of edge i (-1: a random one) over a random
// transport.
func (r *soakRun) edgeAddr(i int) string {
	if i < 0 {
		i = rand.IntN(len(r.edges))
	}
	if rand.IntN(2) == 0 {
		return "ws://" + r.edges[i].addrs["websocket"] + "/"
	}
	return "tcp://" + r.edges[i].addrs["tcp"]
}

// dial connects session to addr, reading (and dropping) what it is sent.
func (r *soakRun) dial(session, addr string, o client.Options) (*client.Conn, bool) {
	o.Session = session
	if o.OnPush == nil {
		o.OnPush = func(client.Frame) {}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, o)
	if err != nil {
		r.note("connect " + session + ": " + err.Error())
		return nil, false
	}
	return c, true
}

// hold connects session, keeps the connection for lifetime (or until the
// server ends it), and closes it.
func (r *soakRun) hold(session, addr string, lifetime time.Duration) bool {
	c, ok := r.dial(session, addr, client.Options{})
	if !ok {
		return r.wait(time.Second)
	}
	defer c.Close()
	t := time.NewTimer(lifetime)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.Done():
		return r.wait(time.Second)
	case <-r.stop:
		return false
	}
}

// takeover holds session on one edge, then connects it on the other: the
// first connection ends replaced, the second lives on.
func (r *soakRun) takeover(session string, lifetime time.Duration) bool {
	first := rand.IntN(len(r.edges))
	c, ok := r.dial(session, r.edgeAddr(first), client.Options{})
	if !ok {
		return r.wait(time.Second)
	}
	defer c.Close()
	if !r.wait(lifetime / 2) {
		return false
	}
	return r.hold(session, r.edgeAddr((first+1)%len(r.edges)), lifetime/2)
}

// slow connects session as a reader that stops reading after its first
// push, and sends it a burst of large pushes: what its socket and queue
// cannot hold is dead-lettered queue_full, and once the edge's write
// timeout passes the connection is closed too_slow.
func (r *soakRun) slow(session string, lifetime time.Duration) bool {
	stalled := make(chan struct{})
	c, ok := r.dial(session, r.edgeAddr(-1), client.Options{OnPush: func(client.Frame) { <-stalled }})
	if !ok {
		return r.wait(time.Second)
	}
	defer c.Close()
	defer close(stalled)
	r.bursts.Go(func() {
		for range r.cmd.Burst {
			if !r.enqueueBig(session) {
				return
			}
		}
	})
	return r.wait(lifetime)
}

// killed connects session over raw TCP and, after lifetime, resets the
// socket without a close frame: the edge learns of it from the kernel.
func (r *soakRun) killed(session string, lifetime time.Duration) bool {
	nc, err := net.DialTimeout("tcp", r.edges[rand.IntN(len(r.edges))].addrs["tcp"], 30*time.Second)
	if err != nil {
		r.note("connect " + session + ": " + err.Error())
		return r.wait(time.Second)
	}
	hello, _ := wire.AppendTCP(nil, &wire.Frame{Type: wire.TypeHello, ID: session})
	if _, err := nc.Write(hello); err != nil {
		_ = nc.Close()
		return r.wait(time.Second)
	}
	go func() { _, _ = io.Copy(io.Discard, nc) }()
	ok := r.wait(lifetime)
	if tc, isTCP := nc.(*net.TCPConn); isTCP {
		_ = tc.SetLinger(0) // a reset, as when the client's process is killed
	}
	_ = nc.Close()
	return ok
}

// sampleAll samples every edge.
func (r *soakRun) sampleAll(began time.Time) []soakSample {
	var out []soakSample
	for i, e := range r.edges {
		out = append(out, r.sampleEdge(fmt.Sprintf("edge%d", i+1), e, began))
	}
	return out
}

// sampleEdge reads one edge's figures: /proc for RSS, /metrics for the
// rest, /sessions for the pushes queued.
func (r *soakRun) sampleEdge(name string, e *edgeChild, began time.Time) soakSample {
	s := soakSample{Elapsed: time.Since(began).Round(time.Second).Seconds(), Edge: name}
	if m, err := scrapeEdge(e.addrs["admin"]); err == nil {
		s.Sessions, s.Heap, s.Goroutines, s.Files = m.sessions, m.heap, m.routines, m.fds
	}
	_, rss, _ := procStat(e.cmd.Process.Pid)
	s.RSS = float64(rss)
	s.Queued = queuedOn(e.addrs["admin"])
	return s
}

// queuedOn sums the pushes queued for every session of the edge whose
// admin listener is admin (-1 when it did not answer).
func queuedOn(admin string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/sessions", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var all []protocol.SessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return -1
	}
	n := 0
	for _, s := range all {
		n += s.Queued.High + s.Queued.Low
	}
	return n
}

// progress says on standard error how the soak goes.
func (r *soakRun) progress(began time.Time) {
	fmt.Fprintf(os.Stderr, "pushbench soak: %s of %s: %d published, %d written, %d unacknowledged\n",
		time.Since(began).Round(time.Second), r.cmd.Duration, r.published.Load(), r.written.Load(), r.unacked.Load())
}

// Tolerances of the baseline check.
const (
	soakRoutines = 10
	soakFiles    = 10
	soakHeap     = 16 << 20
	soakRSS      = 64 << 20
)

// settle waits up to --settle for every edge to be back at its baseline,
// and records the last samples.
func (r *soakRun) settle(began time.Time) {
	deadline := time.Now().Add(r.cmd.Settle)
	for {
		for _, e := range r.edges {
			collect(e.addrs["admin"])
		}
		r.out.Settled = r.sampleAll(began)
		r.out.Problems = r.baselineProblems()
		if len(r.out.Problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	r.out.Baselined = len(r.out.Problems) == 0
}

// collect has the edge whose admin listener is admin run a garbage
// collection (its heap profile with gc=1), so that the heap read next is
// what is live.
func collect(admin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/heap?gc=1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// baselineProblems says how each edge's last sample differs from its
// baseline beyond the tolerances.
func (r *soakRun) baselineProblems() []string {
	var p []string
	for i, s := range r.out.Settled {
		b := r.out.Baseline[i]
		over := func(what string, got, base, tolerance float64, unit func(float64) string) {
			if got > base+tolerance {
				p = append(p, fmt.Sprintf("%s: %s %s, baseline %s", s.Edge, what, unit(got), unit(base)))
			}
		}
		count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
		over("sessions", s.Sessions, 0, 0, count)
		over("goroutines", s.Goroutines, b.Goroutines, soakRoutines, count)
		over("open files", s.Files, b.Files, soakFiles, count)
		over("heap", s.Heap, b.Heap, soakHeap, mib)
		over("RSS", s.RSS, b.RSS, max(soakRSS, b.RSS), mib)
	}
	return p
}

// account gathers the producers' outcomes and the edges' lost pushes and
// checks that every push published is accounted for.
func (r *soakRun) account() {
	o := &r.out
	o.Published, o.Written, o.Unacked, o.Failed = r.published.Load(), r.written.Load(), r.unacked.Load(), r.failed.Load()
	o.Dead, o.FirstError = r.dead, r.firstErr
	o.Moves = map[string]uint64{}
	for i, n := range moveNames {
		o.Moves[n] = r.moves[i].Load()
	}
	for _, e := range r.edges {
		if m, err := scrapeEdge(e.addrs["admin"]); err == nil {
			o.EdgeLost += m.lost
		}
	}
	var dead uint64
	for _, n := range o.Dead {
		dead += n
	}
	o.Accounted = o.Published > 0 && o.Published == o.Written+dead+o.Unacked && o.Failed == 0 && o.EdgeLost == 0
}

// print writes the samples as a table, then the accounting and the
// baseline check.
func (o *soakOutput) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "elapsed\tedge\tsessions\tRSS\theap\tgoroutines\topen files\tqueued\t")
	row := func(label string, s soakSample) {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%.0f\t%.0f\t%d\t\n", label, s.Edge, s.Sessions, mib(s.RSS), mib(s.Heap), s.Goroutines, s.Files, s.Queued)
	}
	for _, s := range o.Baseline {
		row("baseline", s)
	}
	for _, s := range o.Samples {
		row(time.Duration(s.Elapsed*float64(time.Second)).String(), s)
	}
	for _, s := range o.Settled {
		row("settled", s)
	}
	_ = tw.Flush()
	reasons := make([]string, 0, len(o.Dead))
	var dead uint64
	for k, n := range o.Dead {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, n))
		dead += n
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "\npushes: %d published = %d written + %d dead-lettered (%s) + %d unacknowledged; %d failed; %.0f lost on the edges\n",
		o.Published, o.Written, dead, strings.Join(reasons, ", "), o.Unacked, o.Failed, o.EdgeLost)
	fmt.Fprintf(w, "moves: %v\n", o.Moves)
	if o.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", o.FirstError)
	}
	fmt.Fprintf(w, "accounted: %v; back to baseline: %v\n", o.Accounted, o.Baselined)
	for _, p := range o.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
