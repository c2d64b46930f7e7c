package backend

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// DefaultPresenceWindow is how long GroupPresence gathers the nodes'
// answers unless told otherwise.
const DefaultPresenceWindow = 500 * time.Millisecond

// ErrNoAnswer is the error of a group presence request that NATS had
// responders for (some node holds a member) but that no one answered
// within the window, or of a membership change (ChangeGroups) not
// answered before its context ended: a node too slow, or one not allowed
// to publish to the asker's inbox.
var ErrNoAnswer = errors.New("backend: no node answered")

// PresenceOptions configure GroupPresence. The zero value asks under
// prefix "push" and gathers for DefaultPresenceWindow.
type PresenceOptions struct {
	Prefix string        // the edge nodes' subject prefix; default "push"
	Window time.Duration // how long to gather answers after asking; default DefaultPresenceWindow
}

// GroupMembers is what the nodes holding a group's members answered to a
// presence request within the window.
type GroupMembers struct {
	Group   string                 `json:"group"`
	Members []protocol.SessionInfo `json:"members"` // sorted by session, then node
	Nodes   []string               `json:"nodes"`   // the nodes with members, sorted
	Answers int                    `json:"answers"` // the answers heard: one per node that held members when asked, or several from a node whose members do not fit in one message
	// Offline: no member anywhere. NATS answered "no responders" (no
	// node holds one; at once), or every node that answered had none
	// left.
	Offline bool `json:"offline"`
	// Invalid holds the answers that did not decode (not an edge node's
	// answer), each with its body; the others are kept.
	Invalid []error `json:"-"`
}

// GroupPresence asks every edge node which local members of group it
// holds (<prefix>.group.<group>.presence; push.AllGroup: every connection,
// <prefix>.all.presence) and gathers their answers until opts.Window has
// passed or ctx ends; "no responders" ends it at once (Offline). It
// blocks for the window. The request's reply subject is an inbox of nc
// (nats.CustomInboxPrefix applies), subscribed for the call and gone when
// it returns; nc stays the caller's. A node that answers after the window
// is missed. An error means nothing was learnt: a name breaking the rule,
// NATS refusing the request, or, wrapping ErrNoAnswer, no answer at all
// (with ctx's error when it ended first).
func GroupPresence(ctx context.Context, nc *nats.Conn, group string, opts PresenceOptions) (GroupMembers, error) {
	g := GroupMembers{Group: group, Members: []protocol.SessionInfo{}, Nodes: []string{}}
	if nc == nil {
		return g, errors.New("backend: group presence needs a NATS connection")
	}
	opts, err := opts.withDefaults(group)
	if err != nil {
		return g, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return g, fmt.Errorf("presence of %s: %w", group, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	subject := protocol.GroupSubject(opts.Prefix, group, protocol.Presence)
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return g, fmt.Errorf("presence of %s: %w", group, err)
	}
	wctx, cancel := context.WithTimeout(ctx, opts.Window)
	defer cancel()
	g.gather(wctx, sub)
	switch {
	case g.Answers > 0 || g.Offline:
		g.sort()
		return g, nil
	case ctx.Err() != nil:
		return g, fmt.Errorf("presence of %s: %w: %w", group, ErrNoAnswer, ctx.Err())
	}
	return g, fmt.Errorf("presence of %s: %w within %v", group, ErrNoAnswer, opts.Window)
}

// withDefaults checks the group's name and the prefix and fills in the
// defaults.
func (o PresenceOptions) withDefaults(group string) (PresenceOptions, error) {
	if group != push.AllGroup {
		if err := push.CheckGroup(group); err != nil {
			return o, fmt.Errorf("backend: %w", err)
		}
	}
	var err error
	if o.Prefix, err = prefixOrDefault(o.Prefix); err != nil {
		return o, err
	}
	if o.Window <= 0 {
		o.Window = DefaultPresenceWindow
	}
	return o, nil
}

// gather reads answers from sub until ctx ends, or "no responders" comes,
// and then tells whether no member is anywhere: no responders, or
// answers that are all empty lists.
func (g *GroupMembers) gather(ctx context.Context, sub *nats.Subscription) {
	noResponders := protocol.Gather(ctx, sub, g.take)
	g.Offline = len(g.Members) == 0 && len(g.Invalid) == 0 && (noResponders || g.Answers > 0)
}

// take adds one node's answer: the JSON list of its local members.
func (g *GroupMembers) take(m *nats.Msg) {
	g.Answers++
	var list []protocol.SessionInfo
	if err := json.Unmarshal(m.Data, &list); err != nil {
		g.Invalid = append(g.Invalid, fmt.Errorf("presence answer %.200q: %w", m.Data, err))
		return
	}
	g.Members = append(g.Members, list...)
}

// sort orders the members by session, then node, and lists their nodes.
func (g *GroupMembers) sort() {
	slices.SortFunc(g.Members, func(a, b protocol.SessionInfo) int {
		return cmp.Or(cmp.Compare(a.Session, b.Session), cmp.Compare(a.Node, b.Node))
	})
	for _, m := range g.Members {
		g.Nodes = append(g.Nodes, m.Node)
	}
	slices.Sort(g.Nodes)
	g.Nodes = slices.Compact(g.Nodes)
}
