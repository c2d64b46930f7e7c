// Package protocol is pushfabric's contract on NATS (docs/pushing.md,
// docs/requests.md, docs/dead-letters.md): the subjects pushes travel on,
// the headers they carry, the acknowledgements edge nodes send back, and
// the dead-letter stream's name and subject scheme. It is shared by the
// edge's bus, the producer client, the backend helper and the dead-letter
// tools, so it imports nats.go, the vocabulary (push) and internal/strblock
// only: no other package of the module, no fx, no Prometheus
// (tests/imports_test.go keeps these rules).
package protocol

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/internal/strblock"
	"github.com/pushfabric/pushfabric/push"
)

// DefaultPrefix is the subject prefix unless configured otherwise.
const DefaultPrefix = push.DefaultPrefix

// Control is the token of a session's control subject (takeover
// announcements); a push's is its priority (push.Priority.String).
const Control = "ctl"

// PushSubject is where a push for session at priority (High or Low) is
// published: <prefix>.<session>.<priority>.
func PushSubject(prefix, session, priority string) string {
	return prefix + "." + session + "." + priority
}

// PushSubjectIn is PushSubject made in b, with no allocation of its own.
func PushSubjectIn(b *strblock.Block, prefix, session, priority string) string {
	return b.Start(len(prefix) + len(session) + len(priority) + 2).Add(prefix).AddByte('.').Add(session).AddByte('.').Add(priority).String()
}

// SessionWildcard is the one subscription a node holds per session:
// <prefix>.<session>.* (both priorities and control).
func SessionWildcard(prefix, session string) string { return prefix + "." + session + ".*" }

// ParseSubject splits <prefix>.<session>.<token>.
func ParseSubject(prefix, subject string) (session, token string, ok bool) {
	if len(subject) <= len(prefix) || subject[len(prefix)] != '.' || subject[:len(prefix)] != prefix {
		return "", "", false
	}
	session, token, ok = strings.Cut(subject[len(prefix)+1:], ".")
	if !ok || session == "" || token == "" || strings.Contains(token, ".") {
		return "", "", false
	}
	return session, token, true
}

// Header keys. NATS header keys are case-sensitive: these exact spellings.
const (
	HeaderID          = "Push-Id"
	HeaderExpires     = "Push-Expires"
	HeaderSentAt      = "Push-Sent-At"
	HeaderAck         = "Push-Ack"
	HeaderContentType = "Content-Type"
	HeaderStatus      = "Push-Status"

	HeaderReason      = "Push-Reason"
	HeaderSubject     = "Push-Subject"
	HeaderSession     = "Push-Session"
	HeaderPriority    = "Push-Priority"
	HeaderNode        = "Push-Node"
	HeaderDeadAt      = "Push-Dead-At"
	HeaderReplayCount = "Push-Replay-Count"
	HeaderDeadID      = "Push-Dead-Id" // minted once per death; the dead letter's Nats-Msg-Id
	HeaderTrimmed     = "Push-Trimmed" // what a dead letter lost to fit the stream: "headers <lines> <bytes>", "payload <bytes>"
	HeaderInvalid     = "Push-Invalid" // on an invalid dead letter: what was invalid, "<header or subject token>: <error>"

	HeaderControl = "Push-Control"
	HeaderConn    = "Push-Conn"

	// HeaderReply is the producer's reply subject on a push one edge node
	// hands to another (a takeover, a push that arrived for a session that
	// moved). It is honoured only on a message whose own reply subject is
	// under EdgeInboxPrefix, and stripped from any other.
	HeaderReply = "Push-Reply"

	HeaderRequestID = "Push-Request-Id"
	HeaderStream    = "Push-Stream"
	HeaderError     = "Push-Error"
)

// IsNATSHeader reports whether key is one of the headers NATS and JetStream
// act on (Nats-*, any case): a push's own are never carried to another
// node, stored as they are in a dead letter, or replayed.
func IsNATSHeader(key string) bool {
	return len(key) >= len("Nats-") && strings.EqualFold(key[:len("Nats-")], "Nats-")
}

// EdgeInboxPrefix is where edge nodes receive the answers to the pushes
// they hand over: _PUSH_EDGE.<prefix>. (each node subscribes under its own
// token below it). A push whose reply subject starts with it is a hand-over:
// the taking node answers that subject with an Ack (enqueued when it took
// the push, dead when it dead-lettered it) and the producer on Push-Reply.
// Only edge nodes may publish or subscribe under it.
func EdgeInboxPrefix(prefix string) string { return "_PUSH_EDGE." + prefix + "." }

// Answerable reports whether an edge node may answer on reply, a subject
// the asker chose (a request's reply subject, a hand-over's Push-Reply):
// not one of the fabric's own subjects under prefix — pushes, group pushes
// and broadcasts, control, dead letters, clients' requests, session
// events, the backends' reply inbox — nor a JetStream or system API
// subject ($…). The node publishes an answer with its own rights, which
// include those subjects; NATS does not check the reply subject a
// publisher names, so without this a producer denied the broadcast could
// have a node broadcast its acknowledgement, or a presence asker have it
// forge a session event. The edges' inbox stays answerable: hand-overs
// are answered there.
func Answerable(prefix, reply string) bool { return NewReplyRule(prefix).Answerable(reply) }

// ReplyRule is Answerable for one prefix, its subjects worked out once:
// an edge node asks it of every message with a reply subject.
type ReplyRule struct {
	own [5]string // the fabric's own subject prefixes under the prefix
}

// NewReplyRule is the rule of Answerable for prefix.
func NewReplyRule(prefix string) ReplyRule {
	return ReplyRule{own: [...]string{prefix + ".", DeadLetterPrefix(prefix) + ".", "req." + prefix + ".", "evt." + prefix + ".",
		RequestInboxPrefix(prefix)}}
}

// Answerable reports whether an edge node may answer on reply (see the
// function Answerable).
func (r ReplyRule) Answerable(reply string) bool {
	if reply == "" || reply[0] == '$' {
		return false
	}
	for _, own := range r.own {
		if strings.HasPrefix(reply, own) {
			return false
		}
	}
	return true
}

// RequestInboxPrefix is where edge nodes receive backends' replies to
// the clients' requests they forward: _PUSH_REQ.<prefix>. (each node
// subscribes under its own token below it, one subject per request).
// Backends publish under it and only edge nodes subscribe: an inbox apart
// from the nodes' own (_INBOX or their custom prefix), so a backend may
// answer requests without being able to answer anything else a node asked.
func RequestInboxPrefix(prefix string) string { return "_PUSH_REQ." + prefix + "." }

// RequestSubject is where an edge node forwards a client's request for
// method: req.<prefix>.<method>. Backends subscribe to it in a queue group.
func RequestSubject(prefix, method string) string { return "req." + prefix + "." + method }

// Values of Push-Stream on a backend's replies. A reply without the header
// is the last one and is a frame; StreamEnd ends the stream too, and is a
// frame only if it has a body.
const (
	StreamMore = "more"
	StreamEnd  = "end"
)

// Ack modes, the values of Push-Ack.
const (
	AckEnqueued = "enqueued" // the default when the push has a reply subject
	AckWritten  = "written"
	AckReceived = "received" // the client application confirmed the push with a receipt frame
	AckNone     = "none"
)

// AckMode returns the push's acknowledgement mode, or an error for a value
// that is not one.
func AckMode(h nats.Header) (string, error) {
	switch v := h.Get(HeaderAck); v {
	case "":
		return AckEnqueued, nil
	case AckEnqueued, AckWritten, AckReceived, AckNone:
		return v, nil
	default:
		return "", fmt.Errorf("%s %q: want %s, %s, %s or %s", HeaderAck, v, AckEnqueued, AckWritten, AckReceived, AckNone)
	}
}

// Ack statuses.
const (
	StatusEnqueued = "enqueued"
	StatusWritten  = "written"
	StatusReceived = "received"
	StatusDead     = "dead"
)

// Ack is an edge node's answer to a push with a reply subject.
type Ack struct {
	Status string `json:"status"`           // enqueued, written, received or dead
	Reason string `json:"reason,omitempty"` // why it is dead
	Node   string `json:"node,omitempty"`   // the node that answered
	ID     string `json:"id,omitempty"`     // the push id
	// Members, on a group push's enqueued ack: the node's local members
	// it was queued for.
	Members int `json:"members,omitempty"`
}

// Msg encodes the ack as a reply to subject.
func (a Ack) Msg(subject string) *nats.Msg {
	body, _ := json.Marshal(a)
	return &nats.Msg{Subject: subject, Header: nats.Header{HeaderStatus: []string{a.Status}}, Data: body}
}

// ParseAck decodes an edge node's reply.
func ParseAck(m *nats.Msg) (Ack, error) {
	var a Ack
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return a, fmt.Errorf("ack %q: %w", m.Data, err)
	}
	if a.Status == "" {
		a.Status = m.Header.Get(HeaderStatus)
	}
	switch a.Status {
	case StatusEnqueued, StatusWritten, StatusReceived, StatusDead:
		return a, nil
	}
	return a, fmt.Errorf("ack status %q is not one of enqueued, written, received, dead", a.Status)
}

// Control messages: the value of Push-Control.
const ControlTakeover = "takeover"

// Carrier carries W3C trace context in a push's headers with the exact
// lowercase keys (traceparent, tracestate); it satisfies OpenTelemetry's
// propagation.TextMapCarrier.
type Carrier nats.Header

// Get returns the value of key.
func (c Carrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value.
func (c Carrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the keys present.
func (c Carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Trace context header keys.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// DeadLetterStream is the JetStream stream that keeps dead letters.
const DeadLetterStream = "PUSH_DLQ"

// DeadLetterPrefix is where dead letters of pushes under prefix are
// stored: dlq.<prefix>. The stream holds dlq.<prefix>.>.
func DeadLetterPrefix(prefix string) string { return "dlq." + prefix }

// DeadLetterSubject is where a push for session at priority (its subject
// token) that died for reason is stored:
// dlq.<prefix>.<reason>.<session>.<priority>.
func DeadLetterSubject(prefix string, reason push.Reason, session, priority string) string {
	return DeadLetterPrefix(prefix) + "." + string(reason) + "." + session + "." + priority
}

// ParseDeadLetterSubject splits a dead-letter subject
// dlq.<prefix>.<reason>.<session>.<priority> (the prefix is one token). A
// group's letter, dlq.<prefix>.offline.group.<group>.<priority>, has
// session group.<group>; a subject of any other shape gives "" for all
// three. These tokens, never the letter's headers, say what a letter is.
func ParseDeadLetterSubject(subject string) (reason push.Reason, session, priority string) {
	t := strings.Split(subject, ".")
	if len(t) < 5 || t[0] != "dlq" {
		return "", "", ""
	}
	return push.Reason(t[2]), strings.Join(t[3:len(t)-1], "."), t[len(t)-1]
}
