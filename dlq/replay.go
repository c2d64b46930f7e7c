package dlq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// ReplayOptions tune a replay.
type ReplayOptions struct {
	DryRun   bool          // count what would be replayed; change nothing
	Rate     float64       // dead letters replayed per second; 0: as fast as acks come
	Timeout  time.Duration // wait for each acknowledgement; default 10 s
	Progress func(ReplayResult)
	// Refused, if set, is called for each dead letter replay refuses (see
	// Destination), with a *RefusedError; the letter stays where it is.
	Refused func(Entry, error)
}

// ReplayResult counts a replay's outcomes.
type ReplayResult struct {
	Seen     int   // dead letters selected
	Replayed int   // acknowledged enqueued or written, and deleted
	Offline  int   // no node holds the session: left in place
	Failed   int   // refused (dead again), unanswered, or not deleted: left in place
	Refused  int   // not replayable (see Destination): left in place, not published
	LastErr  error // the last failure, if any
}

// ErrRefused: replay will not publish a dead letter.
var ErrRefused = errors.New("dead letter not replayable")

// RefusedError says why replay will not publish one dead letter. It
// matches ErrRefused.
type RefusedError struct {
	Seq     uint64 // its stream sequence
	Subject string // its stream subject
	ID      string // its push id
	Why     string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("dead letter %d (push %q, %s) not replayed: %s", e.Seq, e.ID, e.Subject, e.Why)
}

// Unwrap makes a RefusedError match ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Replay republishes the dead letters f selects, oldest first, each to the
// session and priority its own subject names (see Destination) with its
// original headers (see ReplayMsg) and Push-Replay-Count + 1, waits for the
// acknowledgement, and deletes the dead letter only once the push is
// enqueued or written. A dead letter whose session is still offline, or
// whose replay fails, stays where it was; one replay refuses is reported
// to o.Refused, stays, and is never published. If ctx ends, Replay stops
// after the dead letter in hand; nothing is lost: a dead letter replayed but
// not yet deleted is replayed again next time with the same Push-Id, which
// clients drop as a repeat.
func (s *Store) Replay(ctx context.Context, nc *nats.Conn, f Filter, o ReplayOptions) (ReplayResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	var limiter *rate.Limiter
	if o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	var r ReplayResult
	err := s.Each(ctx, f, func(e Entry) error {
		r.Seen++
		defer func() {
			if o.Progress != nil {
				o.Progress(r)
			}
		}()
		m, err := ReplayMsg(s.prefix, e)
		if err != nil {
			r.Refused++
			if o.Refused != nil {
				o.Refused(e, err)
			}
			return nil
		}
		if o.DryRun {
			return nil
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		return s.replayOne(ctx, nc, e, m, o.Timeout, &r)
	})
	return r, err
}

func (s *Store) replayOne(ctx context.Context, nc *nats.Conn, e Entry, m *nats.Msg, timeout time.Duration, r *ReplayResult) error {
	fail := func(err error) error {
		r.Failed++
		r.LastErr = err
		return nil
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := nc.RequestMsgWithContext(tctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		r.Offline++
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fail(fmt.Errorf("push %s: %w", e.ID(), err))
	}
	ack, err := protocol.ParseAck(reply)
	if err != nil {
		return fail(err)
	}
	if ack.Status == protocol.StatusDead {
		return fail(fmt.Errorf("push %s died again: %s (a new dead letter holds it)", e.ID(), ack.Reason))
	}
	if err := s.Delete(ctx, e.Seq); err != nil {
		return fail(fmt.Errorf("push %s was replayed but its dead letter stays: %w", e.ID(), err))
	}
	r.Replayed++
	return nil
}

// Destination is where e replays to: <prefix>.<session>.<priority> as the
// tokens of its own stream subject, dlq.<prefix>.<reason>.<session>.<priority>,
// name them — never its Push-Subject header. It refuses, with a
// *RefusedError, a letter whose reason is not a known one, whose session is
// not a valid session id (or is reserved: all, group), whose priority is not
// high or low, a group's letter (dlq.<prefix>.offline.group.<group>.<priority>:
// kept for inspection), one that was trimmed to fit the stream (its
// replay would not be the push that was sent), and one whose
// Push-Replay-Count is not a single non-negative integer below 2^63-1
// (replay could not count it one higher).
func Destination(prefix string, e Entry) (string, error) {
	refuse := func(format string, args ...any) (string, error) {
		return "", &RefusedError{Seq: e.Seq, Subject: e.Subject, ID: e.ID(), Why: fmt.Sprintf(format, args...)}
	}
	if !strings.HasPrefix(e.Subject, protocol.DeadLetterPrefix(prefix)+".") {
		return refuse("not under %s", protocol.DeadLetterPrefix(prefix))
	}
	reason, session, priority := protocol.ParseDeadLetterSubject(e.Subject)
	switch {
	case strings.HasPrefix(session, "group.") && strings.Count(session, ".") == 1:
		return refuse("a group's dead letter is kept for inspection, not replayed")
	case reason == "" || strings.Contains(session, "."):
		return refuse("want %s.<reason>.<session>.<priority>", protocol.DeadLetterPrefix(prefix))
	case !push.Reason(reason).Known():
		return refuse("reason %q is not a dead-letter reason", reason)
	case !push.ValidName(session):
		return refuse("%v", push.CheckName("session", session))
	case push.Reserved(session):
		return refuse("session %q is a reserved name", session)
	case !validPriority(priority):
		return refuse("priority %q: want high or low", priority)
	case len(e.Header[protocol.HeaderTrimmed]) > 0:
		return refuse("it was trimmed to fit the stream (%s)", strings.Join(e.Header[protocol.HeaderTrimmed], ", "))
	}
	if _, ok := replayCount(e); !ok {
		return refuse("%s %q: want one non-negative integer below %d", protocol.HeaderReplayCount,
			strings.Join(e.Header.Values(protocol.HeaderReplayCount), ", "), int64(math.MaxInt64))
	}
	return protocol.PushSubject(prefix, session, priority), nil
}

// replayCount is how often e was replayed: its Push-Replay-Count, 0 if it
// has none; false if that is not one non-negative integer that can be
// counted one higher.
func replayCount(e Entry) (uint64, bool) {
	vs := e.Header.Values(protocol.HeaderReplayCount)
	switch {
	case len(vs) == 0:
		return 0, true
	case len(vs) > 1:
		return 0, false
	}
	n, err := strconv.ParseUint(vs[0], 10, 63)
	return n, err == nil && n < math.MaxInt64
}

// dropped are the headers of a dead letter a replayed push never carries,
// besides every Nats-* and Push-Orig-* one: the dead-letter headers, and
// those only an edge node may set.
var dropped = map[string]bool{
	protocol.HeaderReason: true, protocol.HeaderSubject: true, protocol.HeaderSession: true,
	protocol.HeaderPriority: true, protocol.HeaderNode: true, protocol.HeaderDeadAt: true,
	protocol.HeaderDeadID: true, protocol.HeaderTrimmed: true, protocol.HeaderReply: true,
	protocol.HeaderInvalid: true,
}

// ReplayMsg is the push a dead letter replays as: to its Destination, with
// its original headers — but none of Push-Session, Push-Reply, Nats-* (nor
// the renamed Push-Orig-Nats-*) and the dead-letter headers —
// Push-Replay-Count one higher, and an acknowledgement requested (written
// if the original asked for it, enqueued otherwise). A letter Destination
// refuses is its *RefusedError.
func ReplayMsg(prefix string, e Entry) (*nats.Msg, error) {
	subject, err := Destination(prefix, e)
	if err != nil {
		return nil, err
	}
	h := make(nats.Header, len(e.Header))
	for k, v := range e.Header {
		if !dropped[k] && !protocol.IsNATSHeader(k) && !strings.HasPrefix(k, OrigPrefix) {
			h[k] = v
		}
	}
	n, _ := replayCount(e)
	h.Set(protocol.HeaderReplayCount, strconv.FormatUint(n+1, 10))
	if h.Get(protocol.HeaderAck) != protocol.AckWritten {
		h.Set(protocol.HeaderAck, protocol.AckEnqueued)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: e.Data}, nil
}

func validPriority(token string) bool {
	_, err := push.ParsePriority(token)
	return err == nil
}
