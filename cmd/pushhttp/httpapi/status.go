package httpapi

import (
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// ackStatus is the HTTP status of a push's acknowledgement: 202 enqueued
// (in the session's queue, not yet written), 200 written or received, and
// for a dead push deadStatus of its reason.
func ackStatus(a protocol.Ack) int {
	switch a.Status {
	case protocol.StatusEnqueued:
		return http.StatusAccepted
	case protocol.StatusWritten, protocol.StatusReceived:
		return http.StatusOK
	}
	return deadStatus(push.Reason(a.Reason))
}

// deadStatus is the status of a push dead for reason, in the dead-letter
// stream in every case (docs/http.md has the table):
//
//	offline       404  no node holds the session: parked by pushhttp
//	queue_full    429  the session's queue is full: the client is slow; try later
//	expired       410  Push-Expires passed before it was written
//	invalid       422  the edge refused what the push carries
//	closed, replaced, shutdown, write_error, unconfirmed
//	              409  the connection ended, moved or failed with it
func deadStatus(r push.Reason) int {
	switch r {
	case push.ReasonOffline:
		return http.StatusNotFound
	case push.ReasonQueueFull:
		return http.StatusTooManyRequests
	case push.ReasonExpired:
		return http.StatusGone
	case push.ReasonInvalid:
		return http.StatusUnprocessableEntity
	}
	return http.StatusConflict
}

// ackResult is a push's answer: the edge's acknowledgement as
// protocol.Ack encodes it and, for a dead push, the subject of its dead
// letter in PUSH_DLQ.
type ackResult struct {
	protocol.Ack
	DeadLetter string `json:"dead_letter,omitempty"`
	code       int
}

func (h *Handler) ackResult(a protocol.Ack, session string, prio push.Priority) ackResult {
	res := ackResult{Ack: a, code: ackStatus(a)}
	if a.Status == protocol.StatusDead && push.Reason(a.Reason).Known() {
		res.DeadLetter = protocol.DeadLetterSubject(h.cfg.Prefix, push.Reason(a.Reason), session, prio.String())
	}
	return res
}

// groupResult is a group push's answer: producer.GroupAck and, when no
// node held a member, its dead letter's subject.
type groupResult struct {
	producer.GroupAck
	DeadLetter string `json:"dead_letter,omitempty"`
	code       int
}

// groupStatus is 202 when a member at least took the push, 404 when no
// node held one (parked), else the status of the first node's dead answer.
func groupStatus(a producer.GroupAck) int {
	switch {
	case a.Members > 0:
		return http.StatusAccepted
	case len(a.Dead) > 0 && !a.Offline:
		return deadStatus(push.Reason(a.Dead[0].Reason))
	}
	return http.StatusNotFound
}

// batchResponse answers a batch: one result per push, in order, and how
// many ended each way.
type batchResponse struct {
	Results []batchResult `json:"results"`
	Counts  batchCounts   `json:"counts"`
}

// batchResult is one push of a batch: its ack and status code as if it
// had been pushed alone, or, when its outcome is not known, status
// "failed" with the error's code and message (and its id, to send it
// again).
type batchResult struct {
	protocol.Ack
	DeadLetter string `json:"dead_letter,omitempty"`
	Code       int    `json:"code"`
	Error      string `json:"error,omitempty"`
	Message    string `json:"message,omitempty"`
}

// statusFailed is a batch result's status when its outcome is not known.
const statusFailed = "failed"

type batchCounts struct {
	Enqueued int `json:"enqueued"`
	Written  int `json:"written"`
	Received int `json:"received"`
	Dead     int `json:"dead"`
	Failed   int `json:"failed"`
}

func (c *batchCounts) add(r batchResult) {
	switch r.Status {
	case protocol.StatusEnqueued:
		c.Enqueued++
	case protocol.StatusWritten:
		c.Written++
	case protocol.StatusReceived:
		c.Received++
	case protocol.StatusDead:
		c.Dead++
	default:
		c.Failed++
	}
}

func (h *Handler) batchResult(r producer.Result, m producer.Message) batchResult {
	if r.Err != nil {
		e := pushError(r.Err, "")
		return batchResult{Ack: protocol.Ack{Status: statusFailed, ID: pushID(m)}, Code: e.Status, Error: e.Code, Message: e.Message}
	}
	a := h.ackResult(r.Ack, m.Session, m.Priority)
	return batchResult{Ack: a.Ack, DeadLetter: a.DeadLetter, Code: a.code}
}

// pushID is the id m's options give it.
func pushID(m producer.Message) string {
	msg := &nats.Msg{Header: nats.Header{}}
	_ = tryOptionsOn(msg, m.Options)
	return msg.Header.Get(protocol.HeaderID)
}

// natsDown are the errors of a NATS connection that is not there.
var natsDown = []error{nats.ErrNoServers, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting, nats.ErrConnectionDraining,
	nats.ErrDisconnected, nats.ErrReconnectBufExceeded, producer.ErrNotRunning}

// pushError is the answer to a push whose outcome is not known, or that
// NATS refused: 504 when no ack came in time (send it again with the
// same id), 503 when NATS is not there (or pushhttp is stopping), 413
// over the NATS server's max payload, else 500.
func pushError(err error, id string) *apiError {
	e := &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: err.Error(), ID: id}
	switch {
	case errors.Is(err, producer.ErrUnacknowledged):
		e.Status, e.Code = http.StatusGatewayTimeout, codeUnacknowledged
		e.Message += ": it may have been delivered; send it again with the same Push-Id"
	case errors.Is(err, nats.ErrMaxPayload):
		e.Status, e.Code = http.StatusRequestEntityTooLarge, codeTooLarge
	default:
		for _, d := range natsDown {
			if errors.Is(err, d) {
				e.Status, e.Code = http.StatusServiceUnavailable, codeUnavailable
			}
		}
	}
	return e
}
