package push

import "fmt"

// Priority is a push's priority. The zero value is High.
type Priority uint8

// The two priorities.
const (
	High Priority = 0
	Low  Priority = 1
)

// Priorities lists both, highest first.
var Priorities = []Priority{High, Low}

// String is the priority's subject token: "high" or "low".
func (p Priority) String() string {
	switch p {
	case High:
		return "high"
	case Low:
		return "low"
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// Valid reports whether p is High or Low.
func (p Priority) Valid() bool { return p <= Low }

// ParsePriority maps "high" and "low" to their Priority.
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "high":
		return High, nil
	case "low":
		return Low, nil
	}
	return 0, fmt.Errorf("priority %q: want high or low", s)
}
