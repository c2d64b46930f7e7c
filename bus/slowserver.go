package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// A NATS server that cannot write to a client fast enough closes the
// connection (a server-side slow consumer: more than its max_pending
// waiting, or a write past its write_deadline) without a word: the node
// sees only a disconnection, and whatever the server held for it is gone.
// So after each reconnection the node asks the server that had the lost
// connection why it closed it, and counts and logs a slow consumer: its
// embedded server directly, or through the account's CONNZ service
// ($SYS.REQ.ACCOUNT.PING.CONNZ, which every account may call on a server
// with a system account). That service keeps the closed connections of
// named accounts only: a server with no accounts configured (every user
// in its global account) does not say, and the node has only the
// disconnection to log.

// connzSubject is the account's CONNZ service.
const connzSubject = "$SYS.REQ.ACCOUNT.PING.CONNZ"

const (
	// connzTimeout bounds one question; the sweeper waits for it.
	connzTimeout = time.Second
	// connzTries is how many sweeps ask about one connection: the server
	// records a closed connection a moment after closing it.
	connzTries = 5
)

// connID names one connection to a server.
type connID struct {
	server string
	cid    uint64
}

func connIDOf(nc *nats.Conn) connID {
	cid, _ := nc.GetClientID()
	return connID{server: nc.ConnectedServerName(), cid: cid}
}

// closedCheck is a lost connection whose server has not said yet why.
type closedCheck struct {
	connID
	tries int
}

// reconnected is called on the connection's callback goroutine after a
// reconnection: the connection before it is to be asked about.
func (w *dropWatch) reconnected(nc *nats.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.now.cid != 0 {
		w.closed = append(w.closed, closedCheck{connID: w.now})
	}
	w.now = connIDOf(nc)
}

// checkClosed asks about each lost connection, and again at the next sweep
// when its server has no record of it yet.
func (w *dropWatch) checkClosed() {
	w.mu.Lock()
	checks := w.closed
	w.closed = nil
	w.mu.Unlock()
	var again []closedCheck
	for _, c := range checks {
		info, err := w.whyClosed(c.connID)
		switch {
		case err != nil:
			w.log.Debug("why nats closed the connection is unknown", zap.String("server", c.server), zap.Error(err))
		case info != nil:
			w.closedBecause(c.connID, info)
		case c.tries+1 < connzTries:
			again = append(again, closedCheck{connID: c.connID, tries: c.tries + 1})
		default:
			w.log.Debug("why nats closed the connection is unknown", zap.String("server", c.server), zap.Uint64("cid", c.cid))
		}
	}
	w.mu.Lock()
	w.closed = append(again, w.closed...)
	w.mu.Unlock()
}

// whyClosed asks id's server about it; nil, nil: it has no record (yet).
func (w *dropWatch) whyClosed(id connID) (*server.ConnInfo, error) {
	opts := server.ConnzOptions{CID: id.cid, State: server.ConnClosed}
	if w.embedded != nil {
		cz, err := w.embedded.Connz(&opts)
		return firstConn(cz), err
	}
	req, err := json.Marshal(server.ConnzEventOptions{ConnzOptions: opts,
		EventFilterOptions: server.EventFilterOptions{Name: id.server, ExactMatch: true}})
	if err != nil {
		return nil, err
	}
	m, err := w.nc.Request(connzSubject, req, connzTimeout)
	if err != nil {
		return nil, fmt.Errorf("ask %s: %w", connzSubject, err)
	}
	var resp struct {
		Data  *server.Connz    `json:"data"`
		Error *server.ApiError `json:"error"`
	}
	switch err := json.Unmarshal(m.Data, &resp); {
	case err != nil:
		return nil, fmt.Errorf("answer of %s: %w", connzSubject, err)
	case resp.Error != nil:
		return nil, fmt.Errorf("answer of %s: %s", connzSubject, resp.Error.Description)
	}
	return firstConn(resp.Data), nil
}

func firstConn(cz *server.Connz) *server.ConnInfo {
	if cz == nil || len(cz.Conns) == 0 {
		return nil
	}
	return cz.Conns[0]
}

// closedBecause counts and logs a connection the server closed as a slow
// consumer, and logs why it closed any other.
func (w *dropWatch) closedBecause(id connID, info *server.ConnInfo) {
	fields := []zap.Field{zap.String("server", id.server), zap.Uint64("cid", id.cid), zap.String("reason", info.Reason)}
	if info.Reason != server.SlowConsumerPendingBytes.String() && info.Reason != server.SlowConsumerWriteDeadline.String() {
		w.log.Info("nats server says why it closed the connection", fields...)
		return
	}
	w.serverSlow.Add(1)
	w.log.Error("nats server closed the connection: slow consumer", append(fields, zap.Int("pending_bytes", info.Pending),
		zap.String("why", "this node read too slowly; what the server held for it is lost, and no dead letter records it"))...)
}

// isConnzRefusal reports whether err is the server refusing this node's
// question about a lost connection (its user may not ask).
func isConnzRefusal(err error) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), connzSubject)
}
