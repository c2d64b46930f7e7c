package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// memberCmd is pushctl member: join a connected session to groups, or
// take it out of them.
type memberCmd struct {
	natsFlags `embed:""`
	Session   string        `arg:"" help:"The session whose connection joins or leaves groups."`
	Join      []string      `placeholder:"GROUP" help:"Groups the session's connection joins (comma-separated, or repeated)."`
	Leave     []string      `placeholder:"GROUP" help:"Groups it leaves (comma-separated, or repeated); a group in both is left."`
	Timeout   time.Duration `default:"5s" help:"How long to wait for the node's answer."`
	JSON      bool          `name:"json" help:"Print the answer as JSON: session, node, groups (and error when refused), and \"online\"."`
}

// Help is shown under the command's usage.
func (memberCmd) Help() string {
	return "Asks <prefix>.<session>.member (headers Push-Join, Push-Leave): the edge node holding the session\n" +
		"changes its connection's groups and answers with the groups after the change. A join is in place when\n" +
		"the answer comes: the node subscribes to the group before it answers, so a group push published after\n" +
		"it reaches the session (through another NATS server of a cluster, once NATS has passed the interest\n" +
		"on: a moment). So is a leave: the node queues no later push of the group for the session (what it had\n" +
		"queued is still delivered). Membership belongs to the connection: it ends with the connection and does\n" +
		"not follow the session when it reconnects, here or on another node (join it again). At most 32 groups,\n" +
		"the token's included. Exit status: 0 changed; 1 offline (no node holds the session: NATS answered \"no\n" +
		"responders\"), refused by the node (its reason is shown; nothing changed), or on error, such as no\n" +
		"answer within --timeout."
}

// Validate checks the session's and the groups' names, and that there is
// something to change.
func (c *memberCmd) Validate(kctx *kong.Context) error {
	switch {
	case len(c.Join) == 0 && len(c.Leave) == 0:
		return errors.New("give --join or --leave, or both")
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", c.Timeout)
	}
	for _, g := range append(c.Join, c.Leave...) {
		if err := push.CheckGroup(g); err != nil {
			return err
		}
	}
	return checkArg(kctx, "session", "session", c.Session)
}

func (c *memberCmd) run() int {
	nc, err := c.connect()
	if err != nil {
		return fail("member", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	r, err := backend.ChangeGroups(ctx, nc, c.Session, c.Join, c.Leave, backend.MemberOptions{Prefix: c.Prefix})
	switch {
	case errors.Is(err, backend.ErrOffline):
		printOffline(c.Session, c.JSON)
		return 1
	case err != nil && !errors.Is(err, backend.ErrRefused):
		return fail("member", err)
	}
	if c.JSON {
		printJSON(struct {
			Online bool `json:"online"`
			protocol.MemberReply
		}{true, r})
	} else if err == nil {
		fmt.Printf("%s: %s (node %s)\n", r.Session, groupList(r.Groups), r.Node)
	}
	if err != nil {
		return fail("member", err)
	}
	return 0
}

// groupList is "groups a, b", or "no groups".
func groupList(groups []string) string {
	if len(groups) == 0 {
		return "no groups"
	}
	return "groups " + strings.Join(groups, ", ")
}
