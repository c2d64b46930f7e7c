package push

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultPrefix is the subject prefix unless configured otherwise.
const DefaultPrefix = "push"

// Identity is who an edge node is on the fabric: the subject prefix every
// subject it uses starts with (<prefix>.<session>.high, dlq.<prefix>.…,
// req.<prefix>.…), and the node's own name, in takeover announcements,
// acknowledgements, dead letters and logs. A node has one; each component
// of the node takes it whole rather than a copy of either part.
type Identity struct {
	Prefix string
	Node   string // unique per node
}

// DefaultIdentity is prefix "push" and a node named after the host and
// the process id.
func DefaultIdentity() Identity { return Identity{Prefix: DefaultPrefix, Node: defaultNode()} }

func defaultNode() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "edge"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// Validate reports whether the prefix and the node are each one subject
// token, joining both errors.
func (id Identity) Validate() error {
	var errs []error
	if !ValidToken(id.Prefix) {
		errs = append(errs, fmt.Errorf("prefix %q must be one subject token (no dots, spaces or wildcards)", id.Prefix))
	}
	if !ValidToken(id.Node) {
		errs = append(errs, fmt.Errorf("node %q must be one subject token", id.Node))
	}
	return errors.Join(errs...)
}

// ValidToken reports whether s can be one token of a NATS subject: not
// empty, no dots, white space or wildcards. A prefix must be one; a
// session name (see [ValidName]) always is.
func ValidToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ". \t\r\n*>")
}
