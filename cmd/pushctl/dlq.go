package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// dlqCmd is pushctl dlq and its commands.
type dlqCmd struct {
	Ls     dlqListCmd   `cmd:"" help:"List dead letters: age, reason, session, size, id."`
	Show   dlqShowCmd   `cmd:"" help:"Show one dead letter (by stream sequence or push id): headers and payload."`
	Stats  dlqStatsCmd  `cmd:"" help:"Count dead letters by reason and session, and the stream's use of its limits."`
	Replay dlqReplayCmd `cmd:"" help:"Republish dead letters to their sessions; delete each once it is acknowledged."`
	Purge  dlqPurgeCmd  `cmd:"" help:"Delete dead letters."`
}

// Help is shown under the command's usage.
func (dlqCmd) Help() string {
	return "The dead-letter stream PUSH_DLQ: pushes that could not be delivered, with the reason."
}

// filterFlags select dead letters. Their environment variables are
// PUSHCTL_DLQ_*: a filter left in the shell must not be read as a push's
// --priority, nor a push's as a filter.
type filterFlags struct {
	Session  string `env:"PUSHCTL_DLQ_SESSION" help:"Only this session."`
	Reason   string `env:"PUSHCTL_DLQ_REASON" help:"Only this reason: ${reasons}."`
	Priority string `env:"PUSHCTL_DLQ_PRIORITY" help:"Only this priority: high or low."`
	Since    string `env:"PUSHCTL_DLQ_SINCE" placeholder:"AGE|TIME" help:"Only dead letters from this long ago (1h30m) or since this RFC 3339 time."`
	Limit    int    `env:"PUSHCTL_DLQ_LIMIT" help:"At most this many, oldest first; 0: all."`
}

// Validate checks the filter, so that a bad one is a command-line mistake.
func (f *filterFlags) Validate() error {
	_, err := f.filter()
	return err
}

func (f *filterFlags) filter() (dlq.Filter, error) {
	flt := dlq.Filter{Session: f.Session, Reason: f.Reason, Priority: f.Priority, Limit: f.Limit}
	if f.Since != "" {
		if d, err := time.ParseDuration(f.Since); err == nil {
			flt.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, f.Since); err == nil {
			flt.Since = t
		} else {
			return flt, fmt.Errorf("--since %q: want a duration (1h30m) or an RFC 3339 time", f.Since)
		}
	}
	return flt, flt.Validate()
}

// dlqSession is what every dlq command opens: a connection and the store.
type dlqSession struct {
	nc    *nats.Conn
	store *dlq.Store
}

func openDLQ(ctx context.Context, nf *natsFlags) (*dlqSession, error) {
	nc, err := nf.connect()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	store, err := dlq.Open(ctx, js, nf.Prefix)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &dlqSession{nc: nc, store: store}, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// dlqFlags are every dlq command's: how to reach NATS and which dead
// letters.
type dlqFlags struct {
	natsFlags   `embed:""`
	filterFlags `embed:""`
}

// open builds the filter, opens the store and calls body, which returns
// the exit status.
func (d *dlqFlags) open(name string, body func(ctx context.Context, s *dlqSession, f dlq.Filter) int) int {
	flt, err := d.filter()
	if err != nil {
		return fail("dlq "+name, err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openDLQ(ctx, &d.natsFlags)
	if err != nil {
		return fail("dlq "+name, err)
	}
	defer s.nc.Close()
	return body(ctx, s, flt)
}

// dlqListCmd is pushctl dlq ls.
type dlqListCmd struct {
	dlqFlags `embed:""`
}

// Help is shown under the command's usage.
func (dlqListCmd) Help() string { return "Lists dead letters, oldest first." }

func (c *dlqListCmd) run() int {
	return c.open("ls", func(ctx context.Context, s *dlqSession, flt dlq.Filter) int {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tAGE\tREASON\tSESSION\tPRIORITY\tSIZE\tPUSH ID")
		n := 0
		now := time.Now()
		err := s.store.Each(ctx, flt, func(e dlq.Entry) error {
			n++
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, age(now.Sub(e.Time)), e.Reason(), e.Session(), e.Priority(), len(e.Data), e.ID())
			return nil
		})
		tw.Flush()
		if err != nil {
			return fail("dlq ls", err)
		}
		fmt.Fprintf(os.Stderr, "%d dead letter(s)\n", n)
		return 0
	})
}

// age prints a duration the way people read ages.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// dlqShowCmd is pushctl dlq show.
type dlqShowCmd struct {
	dlqFlags `embed:""`
	Which    string `arg:"" name:"sequence | push id" help:"The dead letter's stream sequence, or its push id."`
}

// Help is shown under the command's usage.
func (dlqShowCmd) Help() string {
	return "Shows a dead letter's headers and payload. Given a push id, shows every dead letter of that\npush (more than one if it died again after a replay). A payload that is not text is shown as\na hex dump."
}

// Validate refuses a sequence or push id no dead letter can have.
func (c *dlqShowCmd) Validate(kctx *kong.Context) error {
	if seq, err := strconv.ParseUint(c.Which, 10, 64); err == nil && seq == 0 {
		return errors.New("sequence 0: sequences start at 1")
	}
	if onCommandLine(kctx, "sequence | push id") && (c.Which == "" || len(c.Which) > push.MaxFieldLen) {
		return fmt.Errorf("push id %q: want 1-%d bytes", c.Which, push.MaxFieldLen)
	}
	return c.filterFlags.Validate()
}

func (c *dlqShowCmd) run() int {
	return c.open("show", func(ctx context.Context, s *dlqSession, _ dlq.Filter) int {
		var entries []dlq.Entry
		var err error
		what := "no dead letter " + c.Which
		if seq, perr := strconv.ParseUint(c.Which, 10, 64); perr == nil {
			var e dlq.Entry
			e, err = s.store.Get(ctx, seq)
			entries, what = []dlq.Entry{e}, "no dead letter with sequence "+c.Which
		} else {
			entries, err = s.store.Find(ctx, c.Which)
		}
		if errors.Is(err, dlq.ErrNotFound) {
			err = errors.New(what + " (pushctl dlq ls lists them)")
		}
		if err != nil {
			return fail("dlq show", err)
		}
		for i, e := range entries {
			if i > 0 {
				fmt.Println()
			}
			printEntry(e)
		}
		return 0
	})
}

func printEntry(e dlq.Entry) {
	fmt.Printf("sequence %d, stored %s on %s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Subject)
	fmt.Printf("reason %s, session %s, priority %s (its subject's, which replay trusts)\n", e.Reason(), e.Session(), e.Priority())
	routed := map[string]string{protocol.HeaderReason: string(e.Reason()), protocol.HeaderSession: e.Session(), protocol.HeaderPriority: e.Priority()}
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range e.Header[k] {
			note := ""
			if want, ok := routed[k]; ok && v != want {
				note = "  (not what its subject says)"
			}
			fmt.Printf("  %s: %s%s\n", k, v, note)
		}
	}
	fmt.Printf("payload (%d bytes):\n", len(e.Data))
	if utf8.Valid(e.Data) && printable(string(e.Data)) {
		fmt.Println(string(e.Data))
		return
	}
	fmt.Print(hex.Dump(e.Data))
}

// printable reports whether s is text a terminal shows as it is.
func printable(s string) bool {
	for _, r := range s {
		if r < ' ' && r != '\n' && r != '\t' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// dlqStatsCmd is pushctl dlq stats.
type dlqStatsCmd struct {
	dlqFlags `embed:""`
}

// Help is shown under the command's usage.
func (dlqStatsCmd) Help() string {
	return "Counts dead letters by reason and by session; shows the oldest and newest and the stream's\nuse of its limits."
}

func (c *dlqStatsCmd) run() int {
	return c.open("stats", func(ctx context.Context, s *dlqSession, _ dlq.Filter) int {
		st, err := s.store.Stats(ctx)
		if err != nil {
			return fail("dlq stats", err)
		}
		printStats(st)
		return 0
	})
}

func printStats(st dlq.Stats) {
	fmt.Printf("dead letters: %d, %s of %s (%.1f%%)\n", st.Messages, bytesize(st.Bytes), bytesize(uint64(st.Limits.MaxBytes)),
		100*float64(st.Bytes)/float64(max(st.Limits.MaxBytes, 1)))
	if st.Messages > 0 {
		fmt.Printf("oldest: %s (%s ago)\nnewest: %s (%s ago)\n", st.Oldest.UTC().Format(time.RFC3339), age(time.Since(st.Oldest)),
			st.Newest.UTC().Format(time.RFC3339), age(time.Since(st.Newest)))
	}
	fmt.Printf("limits: kept %s, at most %d per reason, session and priority, %d replica(s)\n",
		st.Limits.MaxAge, st.Limits.MaxMsgsPerSubject, st.Limits.Replicas)
	printCounts("by reason", st.ByReason, 0)
	printCounts("by session (top 20)", st.BySession, 20)
}

func printCounts(title string, counts map[string]uint64, top int) {
	if len(counts) == 0 {
		return
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if top > 0 && len(keys) > top {
		keys = keys[:top]
	}
	fmt.Printf("%s:\n", title)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%d\t\n", k, counts[k])
	}
	tw.Flush()
}

func bytesize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// dlqReplayCmd is pushctl dlq replay.
type dlqReplayCmd struct {
	dlqFlags `embed:""`
	DryRun   bool          `help:"Count what would be replayed; change nothing."`
	Rate     float64       `help:"Dead letters replayed per second; 0: as fast as acknowledgements come."`
	Timeout  time.Duration `default:"10s" help:"How long to wait for each acknowledgement."`
}

// Help is shown under the command's usage.
func (dlqReplayCmd) Help() string {
	return "Republishes the selected dead letters, oldest first, each to <prefix>.<session>.<priority> as its\nstream subject names them (never the Push-Subject header), with its original headers except\nPush-Session, Push-Reply and Nats-*, and Push-Replay-Count + 1; waits for each acknowledgement, and\ndeletes a dead letter only once its push is enqueued or written. Dead letters of sessions still\noffline stay in the stream, for a later replay. A dead letter whose subject does not name a known reason, a valid session and high or\nlow, and one trimmed to fit the stream (Push-Trimmed) are refused: each is reported and stays.\nDead letters of group pushes are not selected. Interrupting loses nothing: run it again. Exit status:\n0 when every selected dead letter was replayed or is still offline; 1 if any failed or was refused."
}

func (c *dlqReplayCmd) run() int {
	o := dlq.ReplayOptions{DryRun: c.DryRun, Rate: c.Rate, Timeout: c.Timeout}
	return c.open("replay", func(ctx context.Context, s *dlqSession, flt dlq.Filter) int {
		o.Progress = progress(time.Now())
		o.Refused = func(_ dlq.Entry, err error) { fmt.Fprintln(os.Stderr, "refused:", err) }
		r, err := s.store.Replay(ctx, s.nc, flt, o)
		if o.DryRun {
			fmt.Printf("dry run: %d dead letter(s) would be replayed, %d refused\n", r.Seen-r.Refused, r.Refused)
		} else {
			fmt.Printf("replayed %d, still offline %d, failed %d, refused %d (of %d selected)\n", r.Replayed, r.Offline, r.Failed, r.Refused, r.Seen)
		}
		if r.LastErr != nil {
			fmt.Fprintln(os.Stderr, "last failure:", r.LastErr)
		}
		if err != nil {
			return fail("dlq replay", fmt.Errorf("stopped: %w (nothing is lost: run it again)", err))
		}
		if r.Failed > 0 || r.Refused > 0 {
			return 1
		}
		return 0
	})
}

// progress prints a line a second while a replay runs for longer than that.
func progress(begin time.Time) func(dlq.ReplayResult) {
	last := begin
	return func(r dlq.ReplayResult) {
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(os.Stderr, "… %d done: %d replayed, %d offline, %d failed, %d refused\n", r.Seen, r.Replayed, r.Offline, r.Failed, r.Refused)
		}
	}
}

// dlqPurgeCmd is pushctl dlq purge.
type dlqPurgeCmd struct {
	dlqFlags `embed:""`
	Yes      bool `help:"Do not ask for confirmation."`
}

// Help is shown under the command's usage.
func (dlqPurgeCmd) Help() string {
	return "Deletes the selected dead letters, after asking on the terminal (unless --yes). Without a\nterminal to ask on, --yes is required."
}

// Validate checks the filter, and refuses to purge without --yes when
// there is no terminal to ask on.
func (c *dlqPurgeCmd) Validate() error {
	if !c.Yes && !term.IsTerminal(int(os.Stdin.Fd())) { // not ModeCharDevice: /dev/null is one
		return errors.New("refusing to purge without --yes when not at a terminal")
	}
	return c.filterFlags.Validate()
}

func (c *dlqPurgeCmd) run() int {
	return c.open("purge", func(ctx context.Context, s *dlqSession, flt dlq.Filter) int {
		if !c.Yes {
			n := 0
			if err := s.store.Each(ctx, flt, func(dlq.Entry) error { n++; return nil }); err != nil {
				return fail("dlq purge", err)
			}
			if n == 0 {
				fmt.Println("nothing to purge")
				return 0
			}
			if !confirm(fmt.Sprintf("delete %d dead letter(s) matching %s? [y/N] ", n, describe(flt))) {
				fmt.Println("nothing deleted")
				return 1
			}
		}
		n, err := s.store.Purge(ctx, flt)
		if err != nil {
			return fail("dlq purge", err)
		}
		fmt.Printf("deleted %d dead letter(s)\n", n)
		return 0
	})
}

func describe(f dlq.Filter) string {
	var parts []string
	for _, p := range []struct{ name, v string }{{"reason", f.Reason}, {"session", f.Session}, {"priority", f.Priority}} {
		if p.v != "" {
			parts = append(parts, p.name+"="+p.v)
		}
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since="+f.Since.UTC().Format(time.RFC3339))
	}
	if f.Limit > 0 {
		parts = append(parts, fmt.Sprintf("limit=%d", f.Limit))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, " ")
}

// confirm asks on the terminal; anything but y or yes is no.
func confirm(question string) bool {
	fmt.Fprint(os.Stderr, question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
