package natstest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/bus/protocol"
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
		h.Set(protocol.HeaderReason, "offline")
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
	mu   sync.Mutex
	msgs []*nats.Msg // guarded by mu
}

// SpyOn starts a Spy on s, on its own connection; skip may be nil.
func SpyOn(t testing.TB, s *server.Server, skip func(*nats.Msg) bool) *Spy {
	t.Helper()
	sp := &Spy{}
	nc := Connect(t, s)
	if _, err := nc.Subscribe(">", func(m *nats.Msg) {
		if strings.HasPrefix(m.Reply, "$JS.ACK.") || skip != nil && skip(m) {
			return
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		sp.msgs = append(sp.msgs, m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sp
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
