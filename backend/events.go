package backend

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
)

// Event is a session's lifecycle event as edge nodes publish it on
// evt.<prefix>.<session>.connected|disconnected (docs/sessions.md).
type Event = protocol.SessionEvent

// EventOptions configure a subscription to session events. The zero value
// hears every event under prefix "push".
type EventOptions struct {
	Prefix string // the edge nodes' subject prefix; default "push"
	// Queue, if set, is a queue group: each event goes to one of the
	// subscribers in it, not to all.
	Queue string
	// OnError hears of messages on the events' subjects that are not
	// events (someone other than an edge node published them). Nil: they
	// are dropped.
	OnError func(m *nats.Msg, err error)
}

// SessionEvents subscribes fn to the session events of every edge node:
// a session connected (Event.Event "connected") or its connection ended
// ("disconnected", with the close reason in Event.Reason). fn runs on the
// subscription's goroutine, one event at a time, in the order nc received
// them; it should be quick. Events are plain NATS messages, at most once:
// one published while no subscriber was connected is gone, and the events
// of a session from two nodes (a takeover) may arrive in either order, so
// compare Event.Since to tell the newer connection. When nc is connected,
// the server has the subscription once SessionEvents returns. Unsubscribe the
// returned subscription to stop; nc stays the caller's.
func SessionEvents(nc *nats.Conn, fn func(Event), o EventOptions) (*nats.Subscription, error) {
	if nc == nil || fn == nil {
		return nil, errors.New("backend: session events need a NATS connection and a function")
	}
	var err error
	if o.Prefix, err = prefixOrDefault(o.Prefix); err != nil {
		return nil, err
	}
	onError := o.OnError
	if onError == nil {
		onError = func(*nats.Msg, error) {}
	}
	take := func(m *nats.Msg) {
		e, err := protocol.ParseSessionEvent(o.Prefix, m)
		if err != nil {
			onError(m, err)
			return
		}
		fn(e)
	}
	sub, err := nc.QueueSubscribe(protocol.EventWildcard(o.Prefix), o.Queue, take)
	if err != nil {
		return nil, fmt.Errorf("subscribe to session events: %w", err)
	}
	_ = nc.Flush() // the server has the subscription, when connected
	return sub, nil
}
