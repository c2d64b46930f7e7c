package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// maxLine is the longest line pushctl push --lines reads: a payload of the
// edge's largest frame, written as JSON, with room for its headers.
const maxLine = 4 << 20

// lineResult is what became of one line, as --json prints it.
type lineResult struct {
	Line int `json:"line"`
	protocol.Ack
	Error string `json:"error,omitempty"`
}

// lineSummary counts what became of every line.
type lineSummary struct {
	Lines          int            `json:"lines"`
	Enqueued       int            `json:"enqueued"`
	Written        int            `json:"written"`
	Received       int            `json:"received"`
	Dead           map[string]int `json:"dead,omitempty"` // by reason
	Refused        int            `json:"refused"`        // not a valid push: not sent
	Unacknowledged int            `json:"unacknowledged"` // sent, no answer within --timeout: it may have been delivered
	Failed         int            `json:"failed"`         // not sent: NATS refused it
}

func (s *lineSummary) ok() bool {
	return len(s.Dead) == 0 && s.Refused == 0 && s.Unacknowledged == 0 && s.Failed == 0
}

func (s *lineSummary) String() string {
	parts := []string{fmt.Sprintf("%d enqueued", s.Enqueued)}
	if s.Written > 0 {
		parts = append(parts, fmt.Sprintf("%d written", s.Written))
	}
	if s.Received > 0 {
		parts = append(parts, fmt.Sprintf("%d received", s.Received))
	}
	dead := 0
	var reasons []string
	for r, n := range s.Dead {
		dead += n
		reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
	}
	slices.Sort(reasons)
	if dead > 0 {
		parts = append(parts, fmt.Sprintf("%d dead (%s)", dead, strings.Join(reasons, ", ")))
	}
	if s.Refused > 0 {
		parts = append(parts, fmt.Sprintf("%d refused", s.Refused))
	}
	if s.Unacknowledged > 0 {
		parts = append(parts, fmt.Sprintf("%d unacknowledged", s.Unacknowledged))
	}
	if s.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", s.Failed))
	}
	return fmt.Sprintf("%s: %s", counted(s.Lines, "line"), strings.Join(parts, ", "))
}

// pushLines reads pushes as JSON lines from in and sends them through
// PublishBatch, --batch at a time, or what was read when no more input is
// waiting. It prints to out, in the order of the
// lines, each that did not go through (all of them with --json), then the
// summary; a line that is not a push is refused and the others still go.
// Exit status 1 unless every push was enqueued, written or received.
func (c *pushCmd) pushLines(p *producer.Producer, prio push.Priority, in io.Reader, out, errOut io.Writer) int {
	var sum lineSummary
	// The lines read since the last flush, in order: a push to send, or a
	// line refused.
	type pending struct {
		n       int
		refused error
		push    int // index in batch
	}
	var waiting []pending
	var batch []producer.Message
	flush := func() {
		var results []producer.Result
		if len(batch) > 0 {
			defaults := c.options() // --expires-in from now
			for i := range batch {
				batch[i].Options = append(slices.Clip(defaults), batch[i].Options...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
			results = p.PublishBatch(ctx, batch)
			cancel()
		}
		for _, w := range waiting {
			if w.refused != nil {
				c.report(out, &sum, w.n, protocol.Ack{}, w.refused, true)
			} else {
				c.report(out, &sum, w.n, results[w.push].Ack, results[w.push].Err, false)
			}
		}
		batch, waiting = batch[:0], waiting[:0]
	}
	r := bufio.NewReaderSize(in, 256<<10)
	for n := 1; ; n++ {
		line, err := readLine(r, maxLine)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errLongLine) {
			flush()
			fmt.Fprintf(errOut, "pushctl push: reading line %d: %v\n", n, err)
			sum.Lines++
			sum.Failed++
			break
		}
		if len(bytes.TrimSpace(line)) == 0 && (err == nil || errors.Is(err, io.EOF)) {
			continue // a blank line is no push, the last one (blanks after the last newline) neither
		}
		var m producer.Message
		if err == nil || errors.Is(err, io.EOF) {
			m, err = producer.ParseJSONPush(line, prio)
		}
		if errors.Is(err, errLongLine) {
			err = fmt.Errorf("longer than %d bytes", maxLine)
		}
		if err != nil {
			waiting = append(waiting, pending{n: n, refused: err})
		} else {
			waiting, batch = append(waiting, pending{n: n, push: len(batch)}), append(batch, m)
		}
		// A batch goes when it is full, or when no more input is waiting
		// (the next read may block: a script writing now and then).
		if len(batch) >= c.Batch || len(waiting) >= 4*c.Batch || r.Buffered() == 0 {
			flush()
		}
	}
	flush()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		fmt.Fprintf(errOut, "pushctl push: writing the dead letters: %v\n", err)
		return 1
	}
	if c.JSON {
		b, _ := json.Marshal(struct {
			Summary *lineSummary `json:"summary"`
		}{&sum})
		fmt.Fprintln(out, string(b))
	} else {
		fmt.Fprintln(out, sum.String())
	}
	if !sum.ok() {
		return 1
	}
	return 0
}

// report counts what became of line n and prints it when it did not go
// through, or always with --json.
// A line that is no push is refused (not sent).
func (c *pushCmd) report(out io.Writer, sum *lineSummary, n int, a protocol.Ack, err error, refused bool) {
	sum.Lines++
	res := lineResult{Line: n, Ack: a}
	switch {
	case refused:
		sum.Refused++
		res.Error = "refused: " + err.Error()
	case errors.Is(err, producer.ErrUnacknowledged):
		sum.Unacknowledged++
		res.Error = "unacknowledged: " + err.Error()
	case err != nil:
		sum.Failed++
		res.Error = "failed: " + err.Error()
	case a.Status == protocol.StatusDead:
		if sum.Dead == nil {
			sum.Dead = map[string]int{}
		}
		sum.Dead[a.Reason]++
	case a.Status == protocol.StatusWritten:
		sum.Written++
	case a.Status == protocol.StatusReceived:
		sum.Received++
	default:
		sum.Enqueued++
	}
	switch {
	case c.JSON:
		b, _ := json.Marshal(res)
		fmt.Fprintln(out, string(b))
	case res.Error != "":
		fmt.Fprintf(out, "line %d: %s\n", n, res.Error)
	case a.Status == protocol.StatusDead:
		fmt.Fprintf(out, "line %d: dead: %s (push %s, dead-lettered by %s)\n", n, a.Reason, a.ID, a.Node)
	}
}

// errLongLine refuses a line longer than the limit.
var errLongLine = errors.New("a line too long")

// readLine reads one line without its end (\n or \r\n; a last line's
// \r). A line longer than
// limit bytes is read to its end and refused with errLongLine; the last
// line may end without a newline (io.EOF with the line).
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			if len(line)+len(chunk) > limit+2 {
				long, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, errLongLine
			}
			return nil, err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) > limit {
			return nil, errLongLine
		}
		return line, err
	}
}
