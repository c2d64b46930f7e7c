package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
)

// fanGroup is the group of the fan-out load; rawFanSubject the shared
// subject its baseline's members subscribe to (rawfan.*).
const (
	fanGroup      = "fan"
	rawFanSubject = "rawfan"
)

// joinAll makes sessions <prefix>0… members of fanGroup, each with a
// membership request to the node holding it, 64 in flight.
func joinAll(natsURL, prefix string, sessions int) error {
	nc, err := nats.Connect(natsURL, nats.Name("pushbench joins"))
	if err != nil {
		return err
	}
	defer nc.Close()
	begin := time.Now()
	sem := make(chan struct{}, 64)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for i := range sessions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := join(nc, fmt.Sprintf("%s%d", prefix, i)); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "fan-out: %d sessions joined group %s in %.2fs\n", sessions, fanGroup, time.Since(begin).Seconds())
	return first
}

// join asks the node holding session to make it a member of fanGroup.
func join(nc *nats.Conn, session string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := backend.ChangeGroups(ctx, nc, session, []string{fanGroup}, nil, backend.MemberOptions{})
	return err
}

// rawFanSet is the fan-out baseline's members: one NATS connection each,
// subscribed to rawfan.*, so that the NATS server fans every message out
// to as many sockets as the edge writes to.
type rawFanSet struct {
	conns   []*nats.Conn
	subs    []*nats.Subscription
	took    time.Duration
	failed  int
	firstEr string
}

// holdRawFan connects count members to url.
func holdRawFan(url string, first, count int, rec *recorder) (*rawFanSet, error) {
	begin := time.Now()
	rs := &rawFanSet{}
	for i := range count {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("pushbench raw member %d", first+i)), nats.NoEcho())
		if err == nil {
			var sub *nats.Subscription
			if sub, err = nc.Subscribe(rawFanSubject+".*", func(m *nats.Msg) { rec.record(i, m.Data) }); err == nil {
				_ = sub.SetPendingLimits(-1, -1)
				rs.subs = append(rs.subs, sub)
				rs.conns = append(rs.conns, nc)
				continue
			}
			nc.Close()
		}
		if rs.failed++; rs.firstEr == "" {
			rs.firstEr = err.Error()
		}
	}
	for _, nc := range rs.conns {
		if err := nc.Flush(); err != nil {
			rs.close()
			return nil, err
		}
	}
	rs.took = time.Since(begin)
	return rs, nil
}

func (rs *rawFanSet) status() report {
	var dropped uint64
	for _, s := range rs.subs {
		if d, err := s.Dropped(); err == nil {
			dropped += uint64(d)
		}
	}
	return report{Connected: len(rs.conns), Failed: rs.failed, Error: rs.firstEr, ConnectSeconds: rs.took.Seconds(), Dropped: dropped}
}

func (rs *rawFanSet) awaitClose(time.Duration) report { return report{} }

func (rs *rawFanSet) close() {
	for _, nc := range rs.conns {
		nc.Close()
	}
}
