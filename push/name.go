package push

import (
	"errors"
	"fmt"
)

// MaxNameLen is the longest session, group or method name.
const MaxNameLen = 128

// MaxFieldLen is the longest push id or content type a push may carry:
// the client frame gives each a one-byte length (package edge/wire).
const MaxFieldLen = 255

// ErrInvalidName is the error of every name that breaks the rule of
// [ValidName]; the errors of [CheckName] wrap it.
var ErrInvalidName = errors.New("want 1-128 characters of A-Z a-z 0-9 _ -")

// ValidName reports whether s is 1 to 128 characters of [A-Za-z0-9_-]: the
// form of session ids, group names and request methods, which all travel
// as NATS subject tokens.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckName returns nil for a valid name, else an error wrapping
// [ErrInvalidName] that says what was named: `session "a.b": want 1-128
// characters of A-Z a-z 0-9 _ -`.
func CheckName(what, s string) error {
	if ValidName(s) {
		return nil
	}
	return &NameError{What: what, Name: s}
}

// NameError is a name that breaks the rule of [ValidName].
type NameError struct {
	What string // "session", "method", "group", "token subject"…
	Name string
}

func (e *NameError) Error() string { return fmt.Sprintf("%s %q: %v", e.What, e.Name, ErrInvalidName) }

// Unwrap returns [ErrInvalidName].
func (e *NameError) Unwrap() error { return ErrInvalidName }

// Reserved reports whether name is one no session may have: "group" and
// "all" name the subjects of group pushes and broadcasts.
func Reserved(name string) bool { return name == "group" || name == "all" }

// CheckSession returns nil for a name a session may have: one that
// passes [CheckName] and is not [Reserved]. Its errors wrap
// [ErrInvalidName].
func CheckSession(name string) error {
	if err := CheckName("session", name); err != nil {
		return err
	}
	if Reserved(name) {
		return reservedError(name)
	}
	return nil
}

// reservedError is a session named as the group subjects are.
type reservedError string

func (e reservedError) Error() string {
	return fmt.Sprintf("session %q: a reserved name (group and all name the subjects of group pushes and broadcasts)", string(e))
}

// Unwrap returns [ErrInvalidName].
func (reservedError) Unwrap() error { return ErrInvalidName }

// MaxGroups is the most groups one connection may be a member of: a
// token's groups claim and the joins after it together.
const MaxGroups = 32

// AllGroup is the group every connection is a member of: a broadcast's
// Push-Group. No group may be named so.
const AllGroup = "all"

// CheckGroup returns nil for a name a group may have: the rule of
// [ValidName], and not [AllGroup].
func CheckGroup(name string) error {
	if name == AllGroup {
		return fmt.Errorf("group %q: reserved for broadcasts", name)
	}
	return CheckName("group", name)
}

// CheckGroups returns nil when names are at most [MaxGroups] names that
// each pass [CheckGroup] (repeats count once), else an error saying which
// broke the rule.
func CheckGroups(names []string) error {
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if err := CheckGroup(n); err != nil {
			return err
		}
		seen[n] = struct{}{}
	}
	if len(seen) > MaxGroups {
		return fmt.Errorf("%d groups: at most %d", len(seen), MaxGroups)
	}
	return nil
}
