package dlq_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// forged are dead letters anyone allowed to park pushes could store: two
// that name a good session in their subject but elsewhere in their
// headers, five whose subject tokens replay must refuse, and one that says
// it lost its payload.
var forged = []struct {
	subject, id, pushSubject string
	refused                  bool
}{
	{"dlq.push.offline.s1.high", "f-backend", "req.push.transfer", false},
	{"dlq.push.offline.s1.low", "f-purge", "$JS.API.STREAM.PURGE.PUSH_DLQ", false},
	{"dlq.push.offline.all.high", "f-all", "push.all.high", true},
	{"dlq.push.offline.s1.ctl", "f-ctl", "push.s1.ctl", true},
	{"dlq.push.bogus.s1.high", "f-reason", "push.s1.high", true},
	{"dlq.push.offline.group.low", "f-group", "push.group.low", true},
	{"dlq.push.offline.bad!name.high", "f-session", "push.bad!name.high", true},
	{"dlq.push.offline.s1.high", "f-trimmed", "push.s1.high", true},
}

// storeForged writes the forged letters straight into the stream, each
// also claiming to be a takeover, and f-trimmed to have lost its payload.
func storeForged(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	letters := make([]natstest.ForgedLetter, len(forged))
	for i, f := range forged {
		h := nats.Header{protocol.HeaderControl: {protocol.ControlTakeover}}
		if f.id == "f-trimmed" {
			h.Set(protocol.HeaderTrimmed, "payload 1048000")
		}
		letters[i] = natstest.ForgedLetter{Subject: f.subject, ID: f.id, PushSubject: f.pushSubject, Header: h}
	}
	natstest.StoreForged(ctx(t), t, js, letters...)
}

// outsiders are the subjects sp saw that are neither a push for s1 nor the
// JetStream traffic of reading and deleting dead letters.
func outsiders(sp *natstest.Spy) []string {
	out := sp.Others()
	for _, m := range sp.Pushes() {
		if m.Subject != "push.s1.high" && m.Subject != "push.s1.low" {
			out = append(out, m.Subject)
		}
	}
	return out
}

// fakeEdge answers pushes for session s1 as an edge holding it would, and
// keeps their headers.
func fakeEdge(t *testing.T, s *server.Server) (headers func() []nats.Header) {
	t.Helper()
	var mu sync.Mutex
	var got []nats.Header
	nc := natstest.Connect(t, s)
	if _, err := nc.Subscribe("push.s1.*", func(m *nats.Msg) {
		mu.Lock()
		got = append(got, m.Header)
		mu.Unlock()
		_ = m.RespondMsg(protocol.Ack{Status: protocol.StatusEnqueued, ID: m.Header.Get(protocol.HeaderID)}.Msg(m.Reply))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []nats.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]nats.Header(nil), got...)
	}
}

// Replay publishes only to <prefix>.<session>.high|low as the letter's own
// subject names them, never carries Push-Session, Push-Reply or Nats-*
// headers, and refuses — reports, leaves in place, goes on — letters whose
// subject tokens are not a known reason, a valid session and a priority,
// or that was trimmed to fit the stream.
func TestReplayPublishesOnlyToTheLettersSession(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	stream, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	storeForged(t, js)
	headers := fakeEdge(t, s)
	sp := natstest.SpyOn(t, s, nil)
	store, err := dlq.Open(ctx(t), js, "push")
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	r, err := store.Replay(ctx(t), natstest.Connect(t, s), dlq.Filter{}, dlq.ReplayOptions{
		Refused: func(e dlq.Entry, err error) { refused = append(refused, e.ID()+": "+err.Error()) },
	})
	if err != nil || r.Replayed != 2 || r.Refused != 6 || r.Failed != 0 {
		t.Fatalf("replay: %+v %v; want 2 replayed, 6 refused", r, err)
	}
	sp.Settle(t, s)
	if out := outsiders(sp); len(out) != 0 {
		t.Fatalf("replay published to %v", out)
	}
	replayed := headers()
	if len(replayed) != 2 {
		t.Fatalf("the session got %d pushes; want 2", len(replayed))
	}
	for _, h := range replayed {
		if h.Get(protocol.HeaderReplayCount) != "1" || !strings.HasPrefix(h.Get(protocol.HeaderID), "f-") {
			t.Errorf("replayed push headers %v; want its Push-Id and Push-Replay-Count 1", h)
		}
		for k := range h {
			if k == protocol.HeaderSession || k == "Push-Reply" || strings.HasPrefix(strings.ToLower(k), "nats-") ||
				strings.HasPrefix(k, dlq.OrigPrefix) || k == protocol.HeaderReason || k == protocol.HeaderSubject {
				t.Errorf("replayed push %s carries %s", h.Get(protocol.HeaderID), k)
			}
		}
	}
	if n := stored(t, stream, "dlq.push.>"); n != 6 {
		t.Fatalf("%d dead letters left; want the 6 refused ones", n)
	}
	if len(refused) != 6 {
		t.Fatalf("reported refusals %q; want 6", refused)
	}
	for _, f := range forged {
		if !f.refused {
			continue
		}
		found := false
		for _, msg := range refused {
			found = found || strings.HasPrefix(msg, f.id+": ")
		}
		if !found {
			t.Errorf("%s (%s) not reported refused: %q", f.id, f.subject, refused)
		}
	}
}
