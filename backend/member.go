package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// ErrOffline is the error of a request for one session that no edge node
// holds: NATS answered "no responders". Nothing changed.
var ErrOffline = errors.New("backend: offline (no node holds the session)")

// ErrRefused is the error of a membership change the node holding the
// session refused (a name breaking the rule, more than push.MaxGroups
// groups, a subscription NATS refused): nothing changed. The error says
// what the node said.
var ErrRefused = errors.New("backend: refused")

// MemberOptions configure ChangeGroups. The zero value asks under prefix
// "push".
type MemberOptions struct {
	Prefix string // the edge nodes' subject prefix; default "push"
}

// ChangeGroups asks the edge node holding session to make its connection
// a member of the groups join and no longer of leave (a name in both is
// left), with a request to <prefix>.<session>.member (headers Push-Join,
// Push-Leave), and returns the node's answer: the session's groups after
// the change, sorted, and the node. The node subscribes to the groups
// joined before it answers, so a group push published on its NATS server
// after ChangeGroups returns reaches the session (through another server
// of a cluster, once NATS has passed the interest on: a moment). With
// neither join nor leave nothing changes and the answer is the groups as
// they are. Membership belongs to the connection: it ends with it and
// does not follow a reconnect (join again on the session's connected
// event, SessionEvents).
//
// It blocks until the answer comes or ctx ends: give ctx a deadline. The
// request's reply subject is an inbox of nc (nats.CustomInboxPrefix
// applies); nc stays the caller's. A session or group name breaking the
// rule is refused here, before anything is sent. Errors: ErrOffline (no
// node holds the session); ErrRefused, with the reply (its Error and the
// groups, unchanged) still returned; ErrNoAnswer with ctx's error when
// ctx ended first (the change may have been made: ask again, a repeated
// join or leave changes nothing); an answer that is not a membership
// reply; or NATS refusing the request.
func ChangeGroups(ctx context.Context, nc *nats.Conn, session string, join, leave []string, opts MemberOptions) (protocol.MemberReply, error) {
	m, err := memberRequest(nc, session, join, leave, opts)
	if err != nil {
		return protocol.MemberReply{}, err
	}
	reply, err := nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return protocol.MemberReply{}, fmt.Errorf("membership of %s: %w", session, ErrOffline)
	case err != nil && ctx.Err() != nil:
		return protocol.MemberReply{}, fmt.Errorf("membership of %s: %w: %w", session, ErrNoAnswer, err)
	case err != nil:
		return protocol.MemberReply{}, fmt.Errorf("membership of %s: %w", session, err)
	}
	r, err := protocol.ParseMemberReply(reply)
	switch {
	case r.Error != "":
		return r, fmt.Errorf("membership of %s: %w by node %s: %s", session, ErrRefused, r.Node, r.Error)
	case err != nil:
		return r, fmt.Errorf("membership of %s: %w", session, err)
	case r.Session != session: // a push's ack, say, from a node that predates membership requests
		return r, fmt.Errorf("membership of %s: the answer %.200q is not a membership reply", session, reply.Data)
	}
	return r, nil
}

// memberRequest checks the names and the prefix and builds the request.
func memberRequest(nc *nats.Conn, session string, join, leave []string, o MemberOptions) (*nats.Msg, error) {
	if nc == nil {
		return nil, errors.New("backend: a membership change needs a NATS connection")
	}
	if err := checkMember(session, join, leave); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	var err error
	if o.Prefix, err = prefixOrDefault(o.Prefix); err != nil {
		return nil, err
	}
	m := nats.NewMsg(protocol.MemberSubject(o.Prefix, session))
	if len(join) > 0 {
		m.Header.Set(protocol.HeaderJoin, strings.Join(join, ","))
	}
	if len(leave) > 0 {
		m.Header.Set(protocol.HeaderLeave, strings.Join(leave, ","))
	}
	return m, nil
}

// checkMember checks a membership change's names: the session's (not a
// reserved one) and every group's.
func checkMember(session string, join, leave []string) error {
	if err := push.CheckSession(session); err != nil {
		return err
	}
	for _, groups := range [][]string{join, leave} {
		for _, g := range groups {
			if err := push.CheckGroup(g); err != nil {
				return err
			}
		}
	}
	return nil
}
