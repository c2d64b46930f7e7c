package edge

import (
	"fmt"
	"slices"

	"github.com/pushfabric/pushfabric/push"
)

// Groups returns the groups the connection is a member of, sorted: its
// token's, with the joins and leaves since. The slice is the caller's.
// Membership belongs to the connection: it ends with it, and a newer
// connection of the session starts from its own token.
func (c *Conn) Groups() []string {
	c.groupsMu.Lock()
	defer c.groupsMu.Unlock()
	return slices.Clone(c.groups)
}

// ChangeGroups makes the connection a member of join and no longer of
// leave (a name in both is left), and returns the groups it was not a
// member of before (added) and those it no longer is (removed). A name
// that breaks push.CheckGroup, or a change that would leave it a member of
// more than Config.MaxGroups, is an error, and nothing changes. It changes
// what the connection says it is a member of, nothing else: the bus, which
// calls it, delivers the groups' pushes.
func (c *Conn) ChangeGroups(join, leave []string) (added, removed []string, err error) {
	for _, n := range slices.Concat(join, leave) {
		if err := push.CheckGroup(n); err != nil {
			return nil, nil, err
		}
	}
	leaving := setOf(leave) // a request may name thousands: sets keep it linear
	c.groupsMu.Lock()
	defer c.groupsMu.Unlock()
	next := slices.Clone(c.groups)
	have := setOf(next)
	for _, n := range join {
		if !have[n] && !leaving[n] {
			have[n] = true
			next, added = append(next, n), append(added, n)
		}
	}
	next = slices.DeleteFunc(next, func(n string) bool {
		if leaving[n] {
			removed = append(removed, n)
			return true
		}
		return false
	})
	if max := c.srv.cfg.maxGroups(); len(next) > max { // counted after the leaves: a full connection may swap one
		return nil, nil, fmt.Errorf("%d groups: at most %d", len(next), max)
	}
	slices.Sort(next)
	c.groups = next
	return added, removed, nil
}

// setOf is names as a set.
func setOf(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}
