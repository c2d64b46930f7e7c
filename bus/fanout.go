package bus

import (
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// fanout is a lane's group stage: the group pushes its lane admitted, and
// the goroutine (fanLoop) that queues each to the group's local members.
// Queuing a push to M members takes M times what one push takes; done on
// the lane it would hold up the lane's channel, which NATS fills, and
// overload would show up as slow-consumer drops that no dead letter
// records. The lane only admits a group push (O(1)) or, when the stage's
// backlog is over its budget, dead-letters it for the group: overload
// stays accounted for, and the lane keeps pace with NATS for every session
// and group on it.
type fanout struct {
	ch chan fanJob // closed by the lane's loop once it has ended
	// backlog is the member copies admitted and not yet queued: added by
	// the lane, taken off by fanLoop.
	backlog atomic.Int64
	budget  int64 // the most member copies waiting at once (Config.FanoutBacklog)

	// Used by fanLoop only.
	ids    idSource    // ids for group pushes that came without one
	copies groupCopies // receipts of the member copies
}

// fanJob is one admitted group push and the member copies it was counted
// for.
type fanJob struct {
	m      *nats.Msg
	copies int64
}

func newFanout(budget int) fanout {
	return fanout{ch: make(chan fanJob, budget), budget: int64(budget), ids: newIDSource()}
}

// admitGroupPush hands a group push to the lane's fan-out stage, or, if
// the stage is over its budget of waiting member copies (a stage with
// nothing waiting takes any push, however large its group), dead-letters
// it queue_full for the group (dlq.<prefix>.queue_full.group.<group>.<prio>):
// none of this node's members got it. A push whose last subject token is
// no priority is refused as invalid here, before it counts against the
// budget. It runs on the lane.
func (d *Dispatcher) admitGroupPush(l *lane, m *nats.Msg, group, token string) {
	d.groupPushes.Add(1)
	p, err := push.ParsePriority(token)
	if err != nil {
		d.rejectGroupInvalid(m, group, token, fmt.Errorf("subject token %q: %w", token, err))
		return
	}
	n := int64(d.groups.members(group))
	f := &l.fan
	if waiting := f.backlog.Add(n); waiting-n > 0 && waiting > f.budget {
		f.backlog.Add(-n)
		d.groupOverflow(m, group, p)
		return
	}
	select {
	case f.ch <- fanJob{m: m, copies: n}:
	default:
		f.backlog.Add(-n)
		d.groupOverflow(m, group, p)
	}
}

// groupOverflow dead-letters a group push the fan-out stage had no room
// for, queue_full for the group with Push-Group, and tells a producer
// waiting.
func (d *Dispatcher) groupOverflow(m *nats.Msg, group string, p push.Priority) {
	d.groupOverflows.Add(1)
	d.rejectGroup(m, group, p.String(), push.ReasonQueueFull)
}

// rejectGroup is reject for a group push none of this node's members got:
// its letter is the group's (dlq.<prefix>.<reason>.group.<group>.<prio>)
// and its Push-Group names the group, whatever the producer wrote there.
func (d *Dispatcher) rejectGroup(m *nats.Msg, group, priority string, reason push.Reason) {
	markGroup(m, group)
	d.reject(m, protocol.GroupLetterSession(group), priority, reason)
}

// rejectGroupInvalid is rejectInvalid for a group push, as rejectGroup.
func (d *Dispatcher) rejectGroupInvalid(m *nats.Msg, group, priority string, why error) {
	markGroup(m, group)
	d.rejectInvalid(m, protocol.GroupLetterSession(group), priority, why)
}

// markGroup sets m's Push-Group to group.
func markGroup(m *nats.Msg, group string) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(protocol.HeaderGroup, group)
}

// fanLoop queues the lane's admitted group pushes to their members, in
// the order the lane admitted them, until the lane has ended and every
// admitted push is queued.
func (d *Dispatcher) fanLoop(l *lane) {
	for j := range l.fan.ch {
		group, token, _ := protocol.ParseGroupSubject(d.prefix, j.m.Subject)
		p, _ := push.ParsePriority(token) // admitGroupPush took only valid ones
		d.groupPush(l, j.m, group, p)
		l.fan.backlog.Add(-j.copies)
	}
}
