package httpapi

import (
	"fmt"
	"path"
	"strings"

	"github.com/pushfabric/pushfabric/push"
)

// A Target says what a caller may push to: sessions or groups whose name
// matches a pattern (path.Match: * ? [a-z]), or every connection (a
// broadcast). Written session:PATTERN, group:PATTERN or all.
type Target struct {
	Kind    TargetKind
	Pattern string // for sessions and groups
}

// TargetKind is what a Target covers.
type TargetKind uint8

// The kinds of Target.
const (
	TargetSession TargetKind = iota
	TargetGroup
	TargetAll
)

// DefaultTargets are a caller's when it names none: every session and
// every group, no broadcast (a role of its own, as on NATS).
var DefaultTargets = []Target{{Kind: TargetSession, Pattern: "*"}, {Kind: TargetGroup, Pattern: "*"}}

// ParseTarget reads one target: session:PATTERN, group:PATTERN or all.
func ParseTarget(s string) (Target, error) {
	if s == push.AllGroup {
		return Target{Kind: TargetAll}, nil
	}
	kind, pattern, ok := strings.Cut(s, ":")
	var t Target
	switch {
	case !ok:
		return t, fmt.Errorf("target %q: want session:PATTERN, group:PATTERN or all", s)
	case kind == "session":
		t.Kind = TargetSession
	case kind == "group":
		t.Kind = TargetGroup
	default:
		return t, fmt.Errorf("target %q: want session:PATTERN, group:PATTERN or all", s)
	}
	if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
		return t, fmt.Errorf("target %q: not a pattern (path.Match: * ? [a-z])", s)
	}
	t.Pattern = pattern
	return t, nil
}

// ParseTargets reads targets; none is nil, which stands for
// DefaultTargets.
func ParseTargets(ss []string) ([]Target, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]Target, 0, len(ss))
	for _, s := range ss {
		t, err := ParseTarget(s)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// String is the target as ParseTarget reads it.
func (t Target) String() string {
	switch t.Kind {
	case TargetSession:
		return "session:" + t.Pattern
	case TargetGroup:
		return "group:" + t.Pattern
	}
	return push.AllGroup
}

// allows reports whether one of targets (nil: DefaultTargets) covers a
// push to name (a session or group, by kind; name is empty for a
// broadcast).
func allows(targets []Target, kind TargetKind, name string) bool {
	if targets == nil {
		targets = DefaultTargets
	}
	for _, t := range targets {
		if t.Kind != kind {
			continue
		}
		if kind == TargetAll {
			return true
		}
		if ok, _ := path.Match(t.Pattern, name); ok {
			return true
		}
	}
	return false
}
