package natstest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// ForgedLetter is a dead letter as anyone allowed to park pushes could
// store it: straight into the stream, saying what it likes.
type ForgedLetter struct {
	Subject     string      // dlq.<prefix>.<reason>.<session>.<priority>, or anything else
	ID          string      // its Push-Id, and its payload
	PushSubject string      // the subject its Push-Subject header claims it was pushed on
	Header      nats.Header // further headers, set over those StoreForged gives every letter
}

// StoreForged publishes letters with js. Each carries, besides its Push-Id,
// Push-Subject and own Header, headers replay must neither trust nor pass
// on: an empty Push-Session, Push-Reason offline, Push-Reply evil.reply and
// Nats-Forged 1.
func StoreForged(ctx context.Context, t testing.TB, js jetstream.JetStream, letters ...ForgedLetter) {
	t.Helper()
	for _, f := range letters {
		h := nats.Header{}
		h.Set(protocol.HeaderID, f.ID)
		h.Set(protocol.HeaderSubject, f.PushSubject)
		h.Set(protocol.HeaderSession, "")
		h.Set(protocol.HeaderReason, string(push.ReasonOffline))
		h.Set("Push-Reply", "evil.reply")
		h.Set("Nats-Forged", "1")
		maps.Copy(h, f.Header)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: f.Subject, Header: h, Data: []byte(f.ID)}); err != nil {
			t.Fatalf("store forged letter %s: %v", f.ID, err)
		}
	}
}

// Spy keeps every message published on a server from the moment SpyOn
// returns, but deliveries from streams (those with a $JS.ACK. reply) and
// the ones its skip function passes over.
type Spy struct {
	mu      sync.Mutex
	msgs    []*nats.Msg              // guarded by mu
	markers map[string]chan struct{} // guarded by mu: Settle's markers not seen yet, each closed when seen
}

// SpyOn starts a Spy on s, on its own connection; skip may be nil.
func SpyOn(t testing.TB, s *server.Server, skip func(*nats.Msg) bool) *Spy {
	t.Helper()
	sp := &Spy{markers: map[string]chan struct{}{}}
	nc := Connect(t, s)
	if _, err := nc.Subscribe(">", func(m *nats.Msg) {
		if strings.HasPrefix(m.Reply, "$JS.ACK.") || skip != nil && skip(m) {
			return
		}
		sp.record(m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sp
}

// Settle returns once sp has seen everything published on s before it was
// called: it publishes a marker from a connection of its own and waits for
// sp to see it. The server hands a message to its subscribers before it
// reads the next one from the same publisher, so a publisher that has had
// an answer after its last message (a replay waits for each push's ack),
// or a connection that has closed, has nothing left in flight that the
// marker could overtake.
func (sp *Spy) Settle(t testing.TB, s *server.Server) {
	t.Helper()
	marker := settlePrefix + nuid.Next()
	seen := make(chan struct{})
	sp.mu.Lock()
	sp.markers[marker] = seen
	sp.mu.Unlock()
	nc := Connect(t, s)
	if err := nc.Publish(marker, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(time.Minute):
		t.Fatalf("the spy never saw its marker %s", marker)
	}
}

// settlePrefix starts the subjects of Settle's markers.
const settlePrefix = "natstest.settle."

// record keeps m, or, for a marker, tells Settle it arrived.
func (sp *Spy) record(m *nats.Msg) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if seen, ok := sp.markers[m.Subject]; ok {
		delete(sp.markers, m.Subject)
		close(seen)
		return
	}
	if !strings.HasPrefix(m.Subject, settlePrefix) {
		sp.msgs = append(sp.msgs, m)
	}
}

// deadLetterTraffic are the prefixes of the subjects reading and deleting
// dead letters in PUSH_DLQ publish on, and of the replies to them.
var deadLetterTraffic = []string{"_INBOX.", "$JS.ACK.", "$JS.FC.", "$JS.EVENT.", "$JS.API.INFO",
	"$JS.API.CONSUMER.", "$JS.API.STREAM.INFO.PUSH_DLQ", "$JS.API.STREAM.MSG.DELETE.PUSH_DLQ"}

// Pushes returns the messages seen on push subjects (push.…).
func (sp *Spy) Pushes() []*nats.Msg { return sp.matching(true) }

// Others returns the subjects seen that are neither pushes nor dead-letter
// traffic (deadLetterTraffic).
func (sp *Spy) Others() []string {
	var out []string
	for _, m := range sp.matching(false) {
		out = append(out, m.Subject)
	}
	return out
}

func (sp *Spy) matching(push bool) []*nats.Msg {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []*nats.Msg
	for _, m := range sp.msgs {
		isPush := strings.HasPrefix(m.Subject, "push.")
		known := slices.ContainsFunc(deadLetterTraffic, func(p string) bool { return strings.HasPrefix(m.Subject, p) })
		if push && isPush || !push && !isPush && !known {
			out = append(out, m)
		}
	}
	return out
}
