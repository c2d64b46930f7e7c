package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/backend"
	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// presenceCmd is pushctl presence: one session, or with --group or --all
// the members of a group, gathered from every node.
type presenceCmd struct {
	natsFlags `embed:""`
	Session   string        `arg:"" optional:"" help:"The session to ask about; with --group or --all, leave it out."`
	Group     string        `env:"PUSHCTL_PRESENCE_GROUP" placeholder:"GROUP" help:"List the members of this group that are online, from every node holding some, instead of one session."`
	All       bool          `name:"all" env:"PUSHCTL_PRESENCE_ALL" help:"List every connection on every node instead of one session."`
	Window    time.Duration `default:"500ms" help:"With --group or --all: how long to gather the nodes' answers."`
	Timeout   time.Duration `default:"5s" help:"How long to wait for one session's answer."`
	JSON      bool          `name:"json" help:"Print the answer as JSON: the node's fields and \"online\" (with --group or --all: group, members, nodes, answers, offline, online)."`
}

// Help is shown under the command's usage.
func (presenceCmd) Help() string {
	return "Asks <prefix>.<session>.presence: the edge node holding the session answers with where and how\n" +
		"it is connected (node, since, transport, the client's address, pushes queued, groups). Exit status:\n" +
		"0 online; 1 offline (no node holds the session: NATS answered \"no responders\") or on error, such\n" +
		"as no answer within --timeout (a try unanswered for a second, as one reaching only a node that has just\n" +
		"let go of the session is, is sent again meanwhile).\n\n" +
		"With --group G (or --all, every connection) it asks <prefix>.group.G.presence (<prefix>.all.presence)\n" +
		"instead: every node holding members answers with its local ones, gathered for --window, and each is\n" +
		"printed as one session is, then how many on how many nodes. Exit status: 0 with members; 1 with none\n" +
		"(no node holds one, or those that answered had none left), or on error, such as no answer within\n" +
		"--window from nodes NATS knows to hold members. A node answering after --window is missed."
}

// Validate checks the session's or group's name: one session, or, with
// --group or --all, none.
func (c *presenceCmd) Validate(kctx *kong.Context) error {
	grouped := c.Group != "" || c.All
	switch {
	case c.Group != "" && c.All:
		return errors.New("--group and --all: choose one")
	case grouped && onCommandLine(kctx, "session"):
		return errors.New("with --group or --all, give no session")
	case grouped && c.Window <= 0:
		return fmt.Errorf("--window %v: want a positive duration", c.Window)
	case c.Group != "":
		return push.CheckGroup(c.Group)
	case !grouped && !onCommandLine(kctx, "session"):
		return errors.New("expected <session>, or --group <group>, or --all")
	}
	return checkArg(kctx, "session", "session", c.Session)
}

func (c *presenceCmd) run() int {
	if c.Group != "" || c.All {
		return c.runGroup()
	}
	var info protocol.SessionInfo
	if status, ok := c.askSession("presence", c.Session, protocol.Presence, c.Timeout, true, c.JSON, &info); !ok {
		return status
	}
	if c.JSON {
		printJSON(struct {
			Online bool `json:"online"`
			protocol.SessionInfo
		}{true, info})
		return 0
	}
	printPresence(os.Stdout, info)
	return 0
}

// printPresence writes one line for a session online.
func printPresence(w io.Writer, info protocol.SessionInfo) {
	fmt.Fprintf(w, "%s: online on node %s since %s (%s), over %s from %s; queued %d high, %d low%s\n",
		info.Session, info.Node, info.Since.Format(time.RFC3339), time.Since(info.Since).Round(time.Second),
		info.Transport, info.Remote, info.Queued.High, info.Queued.Low, groupsSuffix(info.Groups))
}

// runGroup is presence --group or --all: the members every node holding
// some answered with within the window. Answers that do not decode are
// told on standard error; the others are printed.
func (c *presenceCmd) runGroup() int {
	group := c.Group
	if c.All {
		group = push.AllGroup
	}
	nc, err := c.connect()
	if err != nil {
		return fail("presence", err)
	}
	defer nc.Close()
	g, err := backend.GroupPresence(context.Background(), nc, group, backend.PresenceOptions{Prefix: c.Prefix, Window: c.Window})
	if err != nil {
		return fail("presence", err)
	}
	for _, bad := range g.Invalid {
		fail("presence", bad)
	}
	if c.JSON {
		printJSON(struct {
			Online bool `json:"online"`
			backend.GroupMembers
		}{len(g.Members) > 0, g})
	} else {
		printGroup(os.Stdout, g)
	}
	if len(g.Members) == 0 {
		return 1
	}
	return 0
}

// printGroup writes a line per member and how many there are on how
// many nodes, or, with none, why.
func printGroup(w io.Writer, g backend.GroupMembers) {
	for _, m := range g.Members {
		printPresence(w, m)
	}
	all := g.Group == push.AllGroup
	switch {
	case len(g.Members) > 0 && all:
		fmt.Fprintf(w, "%s online on %s\n", counted(len(g.Members), "session"), counted(len(g.Nodes), "node"))
	case len(g.Members) > 0:
		fmt.Fprintf(w, "%s of %s on %s\n", counted(len(g.Members), "member"), g.Group, counted(len(g.Nodes), "node"))
	case all:
		fmt.Fprintf(w, "no session online (%s)\n", whyNone(g, "connection"))
	default:
		fmt.Fprintf(w, "%s: no member online (%s)\n", g.Group, whyNone(g, "member"))
	}
}

// whyNone says why a group presence lists no one.
func whyNone(g backend.GroupMembers, what string) string {
	switch {
	case g.Answers == 0:
		return "no node holds a " + what
	case len(g.Invalid) == g.Answers:
		return counted(g.Answers, "answer") + " that did not decode"
	}
	return counted(g.Answers, "node") + " answered, with none left"
}

// askSession sends a request to <prefix>.<session>.<token>, waits for
// the answer for up to timeout, and decodes it (JSON) into v. When it
// reports false the command is over, with the exit status it returns: the
// session offline (no responders), or an error; each is said. With again
// (a request that changes nothing, such as presence) a try unanswered
// for a second is sent again while timeout lasts: one that reached only
// a node that had just let go of the session goes unanswered.
func (n *natsFlags) askSession(command, session, token string, timeout time.Duration, again, asJSON bool, v any) (int, bool) {
	nc, err := n.connect()
	if err != nil {
		return fail(command, err), false
	}
	defer nc.Close()
	subject := protocol.PushSubject(n.Prefix, session, token)
	deadline := time.Now().Add(timeout)
	try := timeout
	if again {
		try = min(timeout, askAgain)
	}
	m, err := nc.Request(subject, nil, try)
	for again && errors.Is(err, nats.ErrTimeout) && time.Until(deadline) > 0 {
		m, err = nc.Request(subject, nil, min(time.Until(deadline), askAgain))
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		printOffline(session, asJSON)
		return 1, false
	case errors.Is(err, nats.ErrTimeout):
		return fail(command, fmt.Errorf("no answer within --timeout %v, though NATS knows of a subscriber for %s", timeout, subject)), false
	case err != nil:
		return fail(command, err), false
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fail(command, fmt.Errorf("the answer %q: %w", m.Data, err)), false
	}
	return 0, true
}

// askAgain is how long askSession waits for one try of a request it may
// send again.
const askAgain = time.Second

// printOffline says that no node holds session.
func printOffline(session string, asJSON bool) {
	if asJSON {
		printJSON(map[string]any{"session": session, "online": false})
		return
	}
	fmt.Printf("%s: offline (no node holds the session)\n", session)
}

func printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func groupsSuffix(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	return "; groups " + strings.Join(groups, ", ")
}

// kickCmd is pushctl kick.
type kickCmd struct {
	natsFlags `embed:""`
	Session   string        `arg:"" help:"The session to revoke."`
	Timeout   time.Duration `default:"5s" help:"How long to wait for the answer."`
	JSON      bool          `name:"json" help:"Print the answer as JSON: node, closed, and \"online\"."`
}

// Help is shown under the command's usage.
func (kickCmd) Help() string {
	return "Asks <prefix>.<session>.kick: the edge node holding the session closes its connection with close\n" +
		"reason revoked, after which the client libraries do not reconnect; the pushes queued for it are\n" +
		"dead-lettered closed (those asking for a receipt follow the session, and are dead-lettered\n" +
		"unconfirmed when no node holds it). A kick does not stop the client connecting again with a valid\n" +
		"token: refuse it one. Exit status: 0 kicked; 1 offline (no node holds the session) or on error."
}

// Validate checks the session's name.
func (c *kickCmd) Validate(kctx *kong.Context) error {
	return checkArg(kctx, "session", "session", c.Session)
}

func (c *kickCmd) run() int {
	var res protocol.KickResult
	if status, ok := c.askSession("kick", c.Session, protocol.Kick, c.Timeout, false, c.JSON, &res); !ok {
		return status
	}
	switch {
	case c.JSON:
		printJSON(struct {
			Online bool `json:"online"`
			protocol.KickResult
		}{true, res})
	case res.Closed:
		fmt.Printf("%s: kicked: node %s closed its connection (revoked)\n", c.Session, res.Node)
	default:
		fmt.Printf("%s: node %s was closing its connection already\n", c.Session, res.Node)
	}
	return 0
}

// sessionsCmd is pushctl sessions.
type sessionsCmd struct {
	Admin   string        `default:"http://127.0.0.1:9090" placeholder:"URLS" help:"Admin listener URLs of the edge nodes, comma-separated."`
	Node    string        `placeholder:"NAME" help:"Only the sessions of this node (its --node name), of those the admin listeners answer."`
	Timeout time.Duration `default:"5s" help:"How long to wait for each node's answer."`
	JSON    bool          `name:"json" help:"Print the sessions as one JSON list (each entry names its node)."`
}

// Help is shown under the command's usage.
func (sessionsCmd) Help() string {
	return "Lists the sessions edge nodes hold, from each admin listener's GET /sessions (read-only): session,\n" +
		"node, since, transport, the client's address, pushes queued, groups. Exit status 1 when a node does\n" +
		"not answer (the others are still listed)."
}

func (c *sessionsCmd) run() int {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	var all []protocol.SessionInfo
	status := 0
	for _, admin := range strings.Split(c.Admin, ",") {
		list, err := getSessions(ctx, strings.TrimSuffix(admin, "/")+"/sessions")
		if err != nil {
			status = fail("sessions", err)
			continue
		}
		for _, info := range list {
			if c.Node == "" || info.Node == c.Node {
				all = append(all, info)
			}
		}
	}
	if c.JSON {
		if all == nil {
			all = []protocol.SessionInfo{}
		}
		printJSON(all)
		return status
	}
	printSessions(os.Stdout, all)
	return status
}

// getSessions reads one node's GET /sessions at url.
func getSessions(ctx context.Context, url string) ([]protocol.SessionInfo, error) {
	var list []protocol.SessionInfo
	err := cli.Get(ctx, url, func(body io.Reader) error {
		if err := json.NewDecoder(io.LimitReader(body, 64<<20)).Decode(&list); err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		return nil
	})
	return list, err
}

func printSessions(w io.Writer, list []protocol.SessionInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tNODE\tSINCE\tTRANSPORT\tREMOTE\tHIGH\tLOW\tGROUPS")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Session, s.Node, s.Since.Format(time.RFC3339), s.Transport, s.Remote,
			s.Queued.High, s.Queued.Low, strings.Join(s.Groups, ","))
	}
	tw.Flush()
	fmt.Fprintln(w, counted(len(list), "session"))
}
