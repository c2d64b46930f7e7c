package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/bus/protocol"
)

// ReplayOptions tune a replay.
type ReplayOptions struct {
	DryRun   bool          // count what would be replayed; change nothing
	Rate     float64       // dead letters replayed per second; 0: as fast as acks come
	Timeout  time.Duration // wait for each acknowledgement; default 10 s
	Progress func(ReplayResult)
}

// ReplayResult counts a replay's outcomes.
type ReplayResult struct {
	Seen     int   // dead letters selected
	Replayed int   // acknowledged enqueued or written, and deleted
	Offline  int   // no node holds the session: left in place
	Failed   int   // refused (dead again), unanswered, or not deleted: left in place
	LastErr  error // the last failure, if any
}

// Replay republishes the dead letters f selects, oldest first, each to its
// original subject with its original headers and Push-Replay-Count + 1,
// waits for the acknowledgement, and deletes the dead letter only once the
// push is enqueued or written. A dead letter whose session is still offline,
// or whose replay fails, stays where it was. If ctx ends, Replay stops
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
		if o.DryRun {
			return nil
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		return s.replayOne(ctx, nc, e, o.Timeout, &r)
	})
	return r, err
}

func (s *Store) replayOne(ctx context.Context, nc *nats.Conn, e Entry, timeout time.Duration, r *ReplayResult) error {
	fail := func(err error) error {
		r.Failed++
		r.LastErr = err
		return nil
	}
	m, err := ReplayMsg(e)
	if err != nil {
		return fail(err)
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
