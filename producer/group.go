package producer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// GroupAck is what the nodes holding a group's members answered to a
// group push within the producer's GroupWindow.
type GroupAck struct {
	ID      string         `json:"id"`
	Members int            `json:"members"` // the local members it was queued for, summed over the nodes
	Nodes   []protocol.Ack `json:"nodes"`   // each node's enqueued answer, with its Members
	// Dead is the answers of nodes that took the push in and queued it to
	// none of their members: invalid or expired (every node says so), or
	// queue_full (that node's fan-out backlog was full; the push is
	// dead-lettered for the group on dlq.<prefix>.queue_full.group.<group>.<priority>).
	Dead []protocol.Ack `json:"dead,omitempty"`
	// Offline: no node held a member (no responders, or every node that
	// answered had none left); the push is dead-lettered offline on
	// dlq.<prefix>.offline.group.<group>.<priority>, kept for inspection,
	// never redelivered.
	Offline bool `json:"offline,omitempty"`
}

// PushGroup publishes a push for every member of group, on every node
// (push.AllGroup: every connection, a broadcast), and gathers the nodes'
// acknowledgements for Options.GroupWindow (or until ctx ends): each
// member gets a copy of its own (same push id) by its own queue's rules,
// and one that cannot take it has it dead-lettered for its own session.
// WithAck(written or received) is refused: those are per session. An
// error wrapping ErrUnacknowledged means no node answered at all.
func (p *Producer) PushGroup(ctx context.Context, group string, prio push.Priority, payload []byte, opts ...Option) (GroupAck, error) {
	if !p.running.Load() {
		return GroupAck{}, ErrNotRunning
	}
	m, span, err := p.groupMsg(ctx, group, prio, payload, opts)
	if err != nil {
		return GroupAck{}, err
	}
	defer span.End()
	a := GroupAck{ID: m.Header.Get(protocol.HeaderID)}
	m.Reply = p.nc.NewRespInbox()
	sub, err := p.nc.SubscribeSync(m.Reply)
	if err != nil {
		return a, fmt.Errorf("push %s to group %s: %w", a.ID, group, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := p.nc.PublishMsg(m); err != nil {
		return a, fmt.Errorf("push %s to group %s: %w", a.ID, group, err)
	}
	heard := p.gather(ctx, sub, &a)
	span.SetAttributes(attribute.Int("pushfabric.members", a.Members))
	switch {
	case a.Members == 0 && len(a.Dead) == 0 && (heard || a.Offline):
		a.Offline = true
		p.park(m, protocol.GroupLetterSession(group), prio)
	case !heard && ctx.Err() != nil:
		return a, fmt.Errorf("push %s to group %s: %w: %w", a.ID, group, ErrUnacknowledged, ctx.Err())
	case !heard:
		return a, fmt.Errorf("push %s to group %s: %w: no node answered within %v", a.ID, group, ErrUnacknowledged, p.opts.GroupWindow)
	}
	return a, nil
}

// gather reads the nodes' answers until the window passes or ctx ends;
// "no responders" ends it at once (a.Offline). It reports whether any
// node answered, enqueued or dead.
func (p *Producer) gather(ctx context.Context, sub *nats.Subscription, a *GroupAck) bool {
	ctx, cancel := context.WithTimeout(ctx, p.opts.GroupWindow)
	defer cancel()
	noResponders := protocol.Gather(ctx, sub, func(r *nats.Msg) {
		ack, err := protocol.ParseAck(r)
		switch {
		case err != nil:
		case ack.Status == protocol.StatusEnqueued:
			a.Nodes = append(a.Nodes, ack)
			a.Members += ack.Members
		case ack.Status == protocol.StatusDead:
			a.Dead = append(a.Dead, ack)
		}
	})
	heard := len(a.Nodes)+len(a.Dead) > 0
	a.Offline = noResponders && !heard
	return heard
}

// PublishGroup sends a push for every member of group (push.AllGroup:
// every connection) without waiting. If no node holds a member, the push
// is dead-lettered offline shortly after (Options.StatusWindow), on
// dlq.<prefix>.offline.group.<group>.<priority>. An error means the push
// was not sent.
func (p *Producer) PublishGroup(group string, prio push.Priority, payload []byte, opts ...Option) error {
	if !p.running.Load() {
		return ErrNotRunning
	}
	if group != push.AllGroup {
		if err := push.CheckGroup(group); err != nil {
			return err
		}
	}
	return p.publish(group, true, prio, payload, opts)
}

// groupMsg builds a group push: to <prefix>.group.<group>.<prio>, or
// <prefix>.all.<prio> for push.AllGroup, with Push-Group (which its
// offline dead letter keeps).
func (p *Producer) groupMsg(ctx context.Context, group string, prio push.Priority, payload []byte, opts []Option) (*nats.Msg, trace.Span, error) {
	if group != push.AllGroup {
		if err := push.CheckGroup(group); err != nil {
			return nil, nil, err
		}
	}
	m, span, err := p.build(ctx, protocol.GroupSubject(p.opts.Prefix, group, prio.String()), attribute.String("pushfabric.group", group),
		prio, payload, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := groupAckAllowed(m.Header); err != nil {
		span.End()
		return nil, nil, err
	}
	m.Header.Set(protocol.HeaderGroup, group)
	return m, span, nil
}

// groupAckAllowed refuses the acks a group push cannot have.
func groupAckAllowed(h nats.Header) error {
	if v := h.Get(protocol.HeaderAck); v == protocol.AckWritten || v == protocol.AckReceived {
		return fmt.Errorf("%s %s: per session only, not for a group push", protocol.HeaderAck, v)
	}
	return nil
}
