package protocol

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/internal/strblock"
	"github.com/pushfabric/pushfabric/push"
)

// Group headers.
const (
	// HeaderGroup is on a member's copy of a group push, and its dead
	// letter: the group it was sent to (push.AllGroup for a broadcast).
	HeaderGroup = "Push-Group"
	// HeaderJoin and HeaderLeave, on a request to MemberSubject, are the
	// comma-separated groups the session's connection joins and leaves.
	HeaderJoin  = "Push-Join"
	HeaderLeave = "Push-Leave"
)

// Member is the token of a session's membership subject.
const Member = "member"

// GroupToken is the second token of a group push's subject.
const GroupToken = "group"

// GroupSubject is where a push for every member of group at priority is
// published: <prefix>.group.<group>.<priority>; for push.AllGroup, the
// broadcast subject <prefix>.all.<priority>.
func GroupSubject(prefix, group, priority string) string {
	if group == push.AllGroup {
		return prefix + "." + push.AllGroup + "." + priority
	}
	return prefix + "." + GroupToken + "." + group + "." + priority
}

// GroupSubjectIn is GroupSubject made in b, with no allocation of its own.
func GroupSubjectIn(b *strblock.Block, prefix, group, priority string) string {
	if group == push.AllGroup {
		return PushSubjectIn(b, prefix, push.AllGroup, priority)
	}
	return b.Start(len(prefix) + len(GroupToken) + len(group) + len(priority) + 3).
		Add(prefix).AddByte('.').Add(GroupToken).AddByte('.').Add(group).AddByte('.').Add(priority).String()
}

// GroupWildcard is the one subscription a node holds per group it has
// local members of (both priorities): GroupSubject with priority "*".
func GroupWildcard(prefix, group string) string { return GroupSubject(prefix, group, "*") }

// ParseGroupSubject splits <prefix>.group.<group>.<token>, and the
// broadcast subject <prefix>.all.<token> (group push.AllGroup; never
// <prefix>.group.all.<token>, which names no group). It does not check
// the names otherwise.
func ParseGroupSubject(prefix, subject string) (group, token string, ok bool) {
	rest, found := strings.CutPrefix(subject, prefix+".")
	if !found {
		return "", "", false
	}
	if token, found = strings.CutPrefix(rest, push.AllGroup+"."); found {
		return push.AllGroup, token, token != "" && !strings.Contains(token, ".")
	}
	if rest, found = strings.CutPrefix(rest, GroupToken+"."); !found {
		return "", "", false
	}
	group, token, found = strings.Cut(rest, ".")
	return group, token, found && group != "" && group != push.AllGroup && token != "" && !strings.Contains(token, ".")
}

// GroupLetterSession is the session token of a group push's dead letter
// (dlq.<prefix>.<reason>.group.<group>.<priority>): group.<group>, for a
// broadcast group.all.
func GroupLetterSession(group string) string { return GroupToken + "." + group }

// MemberSubject is where a session's membership changes are requested:
// <prefix>.<session>.member.
func MemberSubject(prefix, session string) string { return prefix + "." + session + "." + Member }

// MemberReply is the holding node's answer to a membership request: the
// session's groups after the change, or, with Error set, why nothing
// changed (the reply then has header Push-Error: invalid).
type MemberReply struct {
	Session string   `json:"session"`
	Node    string   `json:"node,omitempty"`
	Groups  []string `json:"groups"`
	Error   string   `json:"error,omitempty"`
}

// MemberErrorInvalid is the Push-Error of a refused membership request.
const MemberErrorInvalid = "invalid"

// Msg encodes the reply to subject.
func (r MemberReply) Msg(subject string) *nats.Msg {
	body, _ := json.Marshal(r)
	m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: body}
	if r.Error != "" {
		m.Header.Set(HeaderError, MemberErrorInvalid)
	}
	return m
}

// ParseMemberReply decodes a membership reply; a refused request is an
// error with the node's message.
func ParseMemberReply(m *nats.Msg) (MemberReply, error) {
	var r MemberReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, fmt.Errorf("member reply %q: %w", m.Data, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("membership of %s refused: %s", r.Session, r.Error)
	}
	return r, nil
}

// SplitGroups splits a Push-Join or Push-Leave value: comma-separated
// names, blanks around them ignored, empty ones dropped.
func SplitGroups(v string) []string {
	var out []string
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}
