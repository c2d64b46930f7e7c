package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Tokens of a session's requests to the node holding it (docs/sessions.md):
// <prefix>.<session>.presence asks where and how the session is connected,
// <prefix>.<session>.kick closes its connection with reason revoked. Both
// are requests; "no responders" means no node holds the session.
const (
	Presence = "presence"
	Kick     = "kick"
)

// Session events, the last token of evt.<prefix>.<session>.<event>.
const (
	EventConnected    = "connected"
	EventDisconnected = "disconnected"
)

// EventSubject is where an edge node publishes a session's lifecycle
// event: evt.<prefix>.<session>.<event>.
func EventSubject(prefix, session, event string) string {
	return "evt." + prefix + "." + session + "." + event
}

// EventWildcard covers every session event under prefix:
// evt.<prefix>.*.* (a session id is one subject token).
func EventWildcard(prefix string) string { return "evt." + prefix + ".*.*" }

// ParseEventSubject splits evt.<prefix>.<session>.<event>; ok is false for
// any other shape or an event that is neither connected nor disconnected.
func ParseEventSubject(prefix, subject string) (session, event string, ok bool) {
	rest, found := strings.CutPrefix(subject, "evt.")
	if !found {
		return "", "", false
	}
	session, event, ok = ParseSubject(prefix, rest)
	if !ok || event != EventConnected && event != EventDisconnected {
		return "", "", false
	}
	return session, event, true
}

// Queued is how many pushes wait in a connection's queues.
type Queued struct {
	High int `json:"high"`
	Low  int `json:"low"`
}

// SessionInfo is a connection as the node holding it describes it: the
// answer to a presence request, and one entry of an edge node's admin
// GET /sessions.
type SessionInfo struct {
	Session   string    `json:"session"`
	Node      string    `json:"node"`
	Since     time.Time `json:"since"`     // when the connection was accepted
	Transport string    `json:"transport"` // websocket or tcp
	Remote    string    `json:"remote"`    // the client's address (from the PROXY header when there is one)
	Queued    Queued    `json:"queued"`
	Groups    []string  `json:"groups,omitempty"`
}

// KickResult is a node's answer to a kick: Closed is false when the
// connection was closing already (for another reason).
type KickResult struct {
	Node   string `json:"node"`
	Closed bool   `json:"closed"`
}

// SessionEvent is the body of a session event. Reason is the close reason
// of a disconnected event (replaced, revoked, shutdown, idle…); Since is
// when the connection was accepted, At when the event happened.
type SessionEvent struct {
	Session   string    `json:"session"`
	Event     string    `json:"event"` // connected or disconnected
	Node      string    `json:"node"`
	Since     time.Time `json:"since"`
	At        time.Time `json:"at"`
	Transport string    `json:"transport,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// ParseSessionEvent decodes a session event published under prefix. The
// session and the event are the subject's (an edge node publishes both
// alike); a message on any other subject, or whose body is not an event, is
// an error.
func ParseSessionEvent(prefix string, m *nats.Msg) (SessionEvent, error) {
	var e SessionEvent
	session, event, ok := ParseEventSubject(prefix, m.Subject)
	if !ok {
		return e, fmt.Errorf("session event: subject %q is not evt.%s.<session>.connected|disconnected", m.Subject, prefix)
	}
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return e, fmt.Errorf("session event on %s: %w", m.Subject, err)
	}
	e.Session, e.Event = session, event
	return e, nil
}
