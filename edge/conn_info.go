package edge

import (
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// ConnInfo describes a connection at one moment: what an operator asks of
// a session (its presence).
type ConnInfo struct {
	Session   string
	Started   time.Time // when the connection was accepted
	Transport string    // "websocket" or "tcp"
	Remote    string    // the client's address: the socket's peer, or what its PROXY header says
	High, Low int       // pushes waiting in each queue
}

// Info returns the connection's description now. It takes the
// connection's lock for a moment and never waits on its socket.
func (c *Conn) Info() ConnInfo {
	c.mu.Lock()
	high, low := c.out.high.len(), c.out.low.len()
	c.mu.Unlock()
	i := ConnInfo{Session: c.session, Started: c.started, Transport: c.fr.name(), High: high, Low: low}
	if c.remote != nil {
		i.Remote = c.remote.String()
	}
	return i
}

// Revoke closes the connection now because its session was revoked: the
// client gets close reason revoked (its libraries do not reconnect after
// it), nothing more is written, and what was queued is accounted for as
// for any closed connection: dead-lettered closed, receipt-pushes handed
// over as its unconfirmed ones are. It reports whether the connection was
// open; one that was closing already keeps its own reason. It does not
// wait: [Conn.Done] is closed when the connection has ended.
func (c *Conn) Revoke() bool {
	c.mu.Lock()
	open := c.state == stateOpen
	c.mu.Unlock()
	if open {
		c.abort(wire.CloseRevoked, push.ReasonClosed)
	}
	return open
}
