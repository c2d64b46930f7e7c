package bus

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// envelopeOf reads a push from its message. A push without an id gets
// one; it goes into the message's headers only if the message travels on
// (stampID), which most never do. The receipt, which keeps the message for
// acknowledgements, dead letters and hand-overs, is the caller's to add.
// A push id that is not UTF-8 is invalid: the protocol's strings are, and
// a client decoding it could neither drop its repeats nor confirm it.
func envelopeOf(m *nats.Msg, ids *idSource) (edge.Envelope, string, error) {
	id := m.Header.Get(protocol.HeaderID)
	if id == "" {
		id = ids.next()
	} else if !utf8.ValidString(id) {
		return edge.Envelope{}, "", fmt.Errorf("%s %q: not UTF-8", protocol.HeaderID, id)
	}
	e := edge.Envelope{Frame: edge.Frame{ID: id, ContentType: m.Header.Get(protocol.HeaderContentType), Payload: m.Data}}
	mode, err := protocol.AckMode(m.Header)
	if err != nil {
		return e, "", err
	}
	// The client confirms it even when no producer waits to hear so: a
	// receipt-push is held, and handed over, until it does.
	e.Frame.WantsReceipt = mode == protocol.AckReceived
	if m.Reply == "" {
		mode = protocol.AckNone
	}
	if exp := m.Header.Get(protocol.HeaderExpires); exp != "" {
		if e.Expires, err = push.ParseTime(exp); err != nil {
			return e, "", fmt.Errorf("%s: %w", protocol.HeaderExpires, err)
		}
		if e.Expires.IsZero() { // 0001-01-01T00:00:00Z has long passed; a zero Expires is none
			e.Expires = time.Unix(0, 0)
		}
	}
	if sent := m.Header.Get(protocol.HeaderSentAt); sent != "" {
		e.Sent, _ = push.ParseTime(sent) // for the latency histogram only: a bad one is left out
	}
	return e, mode, nil
}

// ensureID returns the push's id, giving it one (in its headers, so that
// it keeps it wherever it goes) if it had none.
func ensureID(m *nats.Msg) string {
	id := m.Header.Get(protocol.HeaderID)
	if id == "" {
		id = nuid.Next()
		stampID(m, id)
	}
	return id
}

// stampID puts the push id its frame was given into the message's headers,
// if they lack one, before the message goes anywhere else (a dead letter,
// another node).
func stampID(m *nats.Msg, id string) {
	if m.Header.Get(protocol.HeaderID) != "" {
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(protocol.HeaderID, id)
}
