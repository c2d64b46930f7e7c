package dlq_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/bus/protocol"
	"github.com/pushfabric/pushfabric/dlq"
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

// storeForged writes the forged letters straight into the stream.
func storeForged(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for _, f := range forged {
		h := nats.Header{}
		h.Set(protocol.HeaderID, f.id)
		h.Set(protocol.HeaderSubject, f.pushSubject)
		h.Set(protocol.HeaderSession, "")
		h.Set(protocol.HeaderReason, "offline")
		h.Set("Push-Reply", "evil.reply")
		h.Set("Nats-Forged", "1")
		h.Set(protocol.HeaderControl, protocol.ControlTakeover)
		if f.id == "f-trimmed" {
			h.Set(protocol.HeaderTrimmed, "payload 1048000")
		}
		if _, err := js.PublishMsg(ctx(t), &nats.Msg{Subject: f.subject, Header: h, Data: []byte("forged")}); err != nil {
			t.Fatal(err)
		}
	}
}

// spy records every subject published on s while it runs.
type spy struct {
	mu       sync.Mutex
	subjects []string // of messages that are not deliveries from a stream
}

func watch(t *testing.T, s *server.Server) *spy {
	t.Helper()
	sp := &spy{}
	nc := natstest.Connect(t, s)
	if _, err := nc.Subscribe(">", func(m *nats.Msg) {
		if strings.HasPrefix(m.Reply, "$JS.ACK.") {
			return // a dead letter read from the stream
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		sp.subjects = append(sp.subjects, m.Subject)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sp
}

// outsiders are the subjects seen that are neither a push for s1 nor the
// JetStream traffic of reading and deleting dead letters.
func (sp *spy) outsiders() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	prefixes := []string{"_INBOX.", "$JS.ACK.", "$JS.FC.", "$JS.EVENT.", "$JS.API.INFO",
		"$JS.API.CONSUMER.", "$JS.API.STREAM.INFO.PUSH_DLQ", "$JS.API.STREAM.MSG.DELETE.PUSH_DLQ"}
	var out []string
	for _, s := range sp.subjects {
		ok := s == "push.s1.high" || s == "push.s1.low"
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(s, p)
		}
		if !ok {
			out = append(out, s)
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
	stream, err := dlq.EnsureStream(ctx(t), js, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	storeForged(t, js)
	headers := fakeEdge(t, s)
	sp := watch(t, s)
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
	if out := sp.outsiders(); len(out) != 0 {
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
