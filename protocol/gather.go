package protocol

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/push"
)

// Gather reads the answers to one request from sub, its reply inbox,
// handing each to take, until ctx ends or NATS says "no responders"
// (which it reports): for requests that every node holding something
// answers (a group push's acknowledgements, a group's presence), the
// asker not knowing how many nodes will.
func Gather(ctx context.Context, sub *nats.Subscription, take func(*nats.Msg)) (noResponders bool) {
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return errors.Is(err, nats.ErrNoResponders)
		}
		if push.NoResponders(m.Header, m.Data) {
			return true
		}
		take(m)
	}
}
