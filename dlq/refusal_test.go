package dlq_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// waitFor polls cond until it holds, failing after a ceiling no loaded
// machine reaches.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stored counts the dead letters on subjects matching filter.
func stored(t *testing.T, s jetstream.Stream, filter string) int {
	t.Helper()
	info, err := s.Info(ctx(t), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// all returns every stored dead letter on subjects matching filter.
func all(t *testing.T, s jetstream.Stream, filter string) []jetstream.Msg {
	t.Helper()
	want := stored(t, s, filter)
	cons, err := s.OrderedConsumer(ctx(t), jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// poison are pushes whose dead letters JetStream would refuse as they
// are: headers it acts on, a payload at the server's limit, headers over
// 64 KiB.
func poison(maxPayload int64) []func(dlq.Letter) dlq.Letter {
	header := func(k, v string) func(dlq.Letter) dlq.Letter {
		return func(l dlq.Letter) dlq.Letter { l.Header.Set(k, v); return l }
	}
	return []func(dlq.Letter) dlq.Letter{
		header("Nats-Expected-Last-Sequence", "999"),
		header("Nats-Expected-Stream", "other"),
		header("Nats-TTL", "1s"),
		header("Nats-Rollup", "all"),
		func(l dlq.Letter) dlq.Letter { l.Data = make([]byte, maxPayload-64); return l },
		header("X-Big", strings.Repeat("x", 70_000)),
	}
}

// 30 dead letters JetStream would refuse, mixed with 1,000 ordinary ones:
// the ordinary ones are all stored, each poison one is stored with its
// Nats-* headers renamed or trimmed to fit (or counted lost), and none is
// retried, let alone forever.
func TestPoisonLettersHoldNoOneUp(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	stream, err := dlq.EnsureStream(ctx(t), js, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	attempts := natstest.Connect(t, s) // sees every write of a poison letter
	sub, err := attempts.SubscribeSync("dlq.push.*.poison.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := attempts.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, s)
	cfg := dlq.DefaultWriterConfig()
	cfg.AckTimeout = time.Minute // no retry because a loaded machine was slow to acknowledge
	w := newWriter(t, nc, cfg)
	kinds := poison(nc.MaxPayload())
	for i := range 1000 {
		l := letter(fmt.Sprint("ok", i), "")
		l.Session = "ok"
		w.Write(l)
		if i%33 == 0 && i/33 < 30 {
			p := letter(fmt.Sprint("poison", i/33), "")
			p.Session = "poison"
			w.Write(kinds[(i/33)%len(kinds)](p))
		}
	}
	waitFor(t, "the 1,000 ordinary dead letters stored", func() bool { return stored(t, stream, "dlq.push.*.ok.>") == 1000 })
	if err := w.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v; want every letter written or given up", err)
	}
	st := w.Stats()
	kept := all(t, stream, "dlq.push.*.poison.>")
	if st.Retried != 0 || st.Written != uint64(1000+len(kept)) || int(st.Lost)+len(kept) != 30 {
		t.Fatalf("stats %+v with %d poison letters stored; want none retried, 1,000 + those stored written, the other poison ones lost", st, len(kept))
	}
	if err := attempts.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := sub.Pending(); n != 30 {
		t.Errorf("poison letters written %d times; want 30, once each", n)
	}
	t.Logf("stats %+v; %d poison letters stored", st, len(kept))
	for _, m := range kept {
		checkPoisonStored(t, m)
	}
}

// checkPoisonStored: a stored poison letter carries no Nats-* header but its
// dedupe id, keeps the original ones renamed, and says what it lost.
func checkPoisonStored(t *testing.T, m jetstream.Msg) {
	t.Helper()
	h := m.Headers()
	id := h.Get(protocol.HeaderID)
	for k := range h {
		if strings.HasPrefix(k, "Nats-") && k != nats.MsgIdHdr {
			t.Errorf("%s: stored with header %s", id, k)
		}
	}
	switch {
	case h.Get("X-Big") != "":
		t.Errorf("%s: kept a 70,000-byte header", id)
	case len(m.Data()) > 1<<19:
		t.Errorf("%s: kept a payload at the server's limit", id)
	}
	renamed := false
	for k := range h {
		renamed = renamed || strings.HasPrefix(k, dlq.OrigPrefix+"Nats-")
	}
	if !renamed && len(h[protocol.HeaderTrimmed]) == 0 {
		t.Errorf("%s: headers %v; want the Nats-* header renamed or Push-Trimmed", id, h)
	}
}

// A push that dies twice without a replay between is kept twice; a
// letter written twice under one dead id (a retried write) is kept once.
func TestTheSameDeathTwiceIsKeptTwice(t *testing.T) {
	s := natstest.Server(t)
	stream, err := dlq.EnsureStream(ctx(t), natstest.JetStream(t, s), dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, natstest.Connect(t, s), dlq.DefaultWriterConfig())
	w.Write(letter("p1", "")) // parked, redelivered, dead again
	w.Write(letter("p1", ""))
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	msgs := all(t, stream, "dlq.push.>")
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d dead letters of p1; want 2", len(msgs))
	}
	a, b := msgs[0].Headers(), msgs[1].Headers()
	if a.Get(nats.MsgIdHdr) == b.Get(nats.MsgIdHdr) {
		t.Fatalf("both deaths have Nats-Msg-Id %q", a.Get(nats.MsgIdHdr))
	}
}

// A dead letter the stream refuses for good (here: larger than the
// stream's own message limit) is logged and counted lost at once, never
// retried, and the letters after it are stored.
func TestRefusedLetterIsCountedLost(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	cfg := dlq.DefaultStreamConfig()
	if _, err := dlq.EnsureStream(ctx(t), js, cfg); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx(t), protocol.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	sc := stream.CachedInfo().Config
	sc.MaxMsgSize = 4096
	if _, err := js.UpdateStream(ctx(t), sc); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.ErrorLevel)
	w, err := dlq.NewWriter(natstest.Connect(t, s), dlq.DefaultWriterConfig(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	big := letter("big", "")
	big.Data = make([]byte, 8192)
	w.Write(big)
	w.Write(letter("small", ""))
	if err := w.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v; want the refused letter given up", err)
	}
	if st := w.Stats(); st.Written != 1 || st.Lost != 1 || st.Retried != 0 {
		t.Fatalf("stats %+v; want 1 written, 1 lost, none retried", st)
	}
	var lost []any
	for _, e := range logs.FilterMessage("dead letters lost").All() {
		lost = append(lost, e.ContextMap()["pushes"].([]any)...)
	}
	if len(lost) != 1 || !strings.HasPrefix(lost[0].(string), "big ") {
		t.Fatalf("logged as lost: %v; want big", lost)
	}
}

// A dead letter whose write keeps failing (here: its subject is denied to
// the writer, so no acknowledgement ever comes) is retried with backoff
// while the others are written, and given up, logged and counted lost
// once it has failed for RetryFor.
func TestFailingLetterGivesUpWithoutHoldingOthers(t *testing.T) {
	opts := natstest.Options(t, "n1")
	opts.Users = []*server.User{{Username: "edge", Password: "edge", Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Deny: []string{"dlq.push.*.all.>"}},
	}}}
	s := natstest.StartWith(t, opts)
	nc := natstest.Connect(t, s, nats.UserInfo("edge", "edge"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := dlq.EnsureStream(ctx(t), js, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := dlq.DefaultWriterConfig()
	cfg.AckTimeout, cfg.RetryFor = 500*time.Millisecond, 2*time.Second
	w := newWriter(t, nc, cfg)
	for i := range 5 {
		l := letter(fmt.Sprint("forged", i), "")
		l.Session = "all"
		w.Write(l)
	}
	for i := range 1000 {
		w.Write(letter(fmt.Sprint("ok", i), ""))
	}
	waitFor(t, "the 1,000 ordinary dead letters stored", func() bool { return stored(t, stream, "dlq.push.*.s1.>") == 1000 })
	if err := w.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v; want the failing letters given up", err)
	}
	if st := w.Stats(); st.Written != 1000 || st.Lost != 5 || st.LostBy[dlq.LostGaveUp] != 5 {
		t.Fatalf("stats %+v; want 1,000 written and the 5 forged letters given up", st)
	}
}

// The writer's counts: pushes lost by reason, every reason from 0 (the
// node exports them as pushfabric_pushes_lost_total, see cmd/edge/app).
func TestWriterStatsByReason(t *testing.T) {
	w := newWriter(t, natstest.Connect(t, natstest.Server(t)), dlq.DefaultWriterConfig())
	t.Cleanup(func() { _ = w.Close(ctx(t)) })
	st := w.Stats()
	for _, r := range dlq.LostReasons {
		if v, ok := st.LostBy[r]; !ok || v != 0 {
			t.Errorf("pushes lost, reason %s: %v %v; want 0", r, v, ok)
		}
	}
	if len(st.LostBy) != len(dlq.LostReasons) || st.Lost != 0 || st.Trimmed != 0 {
		t.Errorf("stats %+v; want nothing lost or trimmed, by every reason", st)
	}
}

// Letter.Msg renames Nats-* headers, trims what does not fit and says so,
// and never touches the letter's own headers.
func TestLetterMsgTrimsToFit(t *testing.T) {
	for _, c := range []struct {
		name        string
		header      string // a header X-Big of this many bytes
		data, limit int
		trimmed     []string
		data2       int
	}{
		{name: "fits", data: 100, limit: 1 << 20, data2: 100},
		{name: "payload too large", data: 2000, limit: 1500, trimmed: []string{"payload 2000"}},
		{name: "headers over 64 KiB", header: strings.Repeat("x", 70_000), data: 10, limit: 1 << 20,
			trimmed: []string{"headers 1 70009"}, data2: 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := letter("p1", "")
			l.Header.Set("Nats-TTL", "1s")
			if c.header != "" {
				l.Header.Set("X-Big", c.header)
			}
			l.Data = make([]byte, c.data)
			m, err := l.Msg("push", time.Now(), int64(c.limit))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header[protocol.HeaderTrimmed]; strings.Join(got, "|") != strings.Join(c.trimmed, "|") || len(m.Data) != c.data2 {
				t.Errorf("Push-Trimmed %q, %d bytes of payload; want %q, %d", got, len(m.Data), c.trimmed, c.data2)
			}
			if m.Header.Get("Nats-TTL") != "" || m.Header.Get(dlq.OrigPrefix+"Nats-TTL") != "1s" {
				t.Errorf("headers %v; want Nats-TTL renamed", m.Header)
			}
			if l.Header.Get("Nats-TTL") != "1s" || l.Header.Get(protocol.HeaderReason) != "" {
				t.Errorf("the letter's own headers changed: %v", l.Header)
			}
		})
	}
	l := letter(strings.Repeat("i", 70_000), "") // a Push-Id no trimming may drop
	if _, err := l.Msg("push", time.Now(), 1<<20); !errors.Is(err, dlq.ErrTooLarge) {
		t.Fatalf("a 70,000-byte push id: %v; want ErrTooLarge", err)
	}
}
