package dlq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoredGoroutines()...) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEnsureStreamIsIdempotentAndUpdatesLimits(t *testing.T) {
	js := natstest.JetStream(t, natstest.Server(t))
	cfg := dlq.DefaultStreamConfig()
	for range 2 {
		if _, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, cfg); err != nil {
			t.Fatal(err)
		}
	}
	cfg.MaxAge, cfg.MaxMsgsPerSubject = time.Hour, 10
	s, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.MaxAge != time.Hour || got.MaxMsgsPerSubject != 10 || got.Duplicates != 10*time.Minute ||
		got.Discard != jetstream.DiscardOld || got.Storage != jetstream.FileStorage || got.Subjects[0] != "dlq.push.>" {
		t.Fatalf("stream config %+v", got)
	}
	bad := cfg
	bad.Replicas = -1
	if _, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, bad); err == nil || !strings.Contains(err.Error(), "dlq.StreamConfig.Replicas must be 1 to 5, or 0") {
		t.Fatalf("bad config: %v; want an error about replicas", err)
	}
}

func letter(id string, replay string) dlq.Letter {
	h := nats.Header{}
	h.Set(protocol.HeaderID, id)
	h.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if replay != "" {
		h.Set(protocol.HeaderReplayCount, replay)
	}
	return dlq.Letter{Subject: "push.s1.low", Session: "s1", Priority: "low", Reason: "queue_full", Node: "n1", Header: h, Data: []byte("payload")}
}

func newWriter(t *testing.T, nc *nats.Conn, cfg dlq.WriterConfig) *dlq.Writer {
	t.Helper()
	return startWriter(t, nc, cfg, nil)
}

// startWriter starts a writer on nc of dead letters under prefix push that
// name no node.
func startWriter(t *testing.T, nc *nats.Conn, cfg dlq.WriterConfig, log *zap.Logger) *dlq.Writer {
	t.Helper()
	w, err := dlq.NewWriter(push.Identity{Prefix: protocol.DefaultPrefix}, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx(t), nc); err != nil {
		t.Fatal(err)
	}
	return w
}

// A written dead letter keeps the push and says why, where and when; a
// letter written twice under one dead id (a retried write) is stored once,
// every other death of the push is kept.
func TestWriterWritesDeadLetters(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	stream, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, natstest.Connect(t, s), dlq.DefaultWriterConfig())
	w.Write(letter("p1", ""))
	again := letter("p1", "")
	again.DeadID = "d1"
	w.Write(again) // one death written twice
	w.Write(again)
	w.Write(letter("p1", "1")) // it died again after one replay
	if err := w.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d dead letters; want 3 (one absorbed as a duplicate)", info.State.Msgs)
	}
	m, err := stream.GetMsg(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		protocol.HeaderID: "p1", protocol.HeaderReason: "queue_full", protocol.HeaderSubject: "push.s1.low",
		protocol.HeaderSession: "s1", protocol.HeaderPriority: "low", protocol.HeaderNode: "n1",
		protocol.HeaderReplayCount: "0",
		"traceparent":              "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q; want %q", k, got, v)
		}
	}
	if id := m.Header.Get(protocol.HeaderDeadID); id == "" || m.Header.Get(nats.MsgIdHdr) != id {
		t.Errorf("Push-Dead-Id %q, Nats-Msg-Id %q; want the same fresh id", id, m.Header.Get(nats.MsgIdHdr))
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Header.Get(protocol.HeaderDeadAt)); err != nil {
		t.Errorf("Push-Dead-At %q: %v", m.Header.Get(protocol.HeaderDeadAt), err)
	}
	if m.Subject != "dlq.push.queue_full.s1.low" || string(m.Data) != "payload" {
		t.Fatalf("subject %q data %q", m.Subject, m.Data)
	}
	if st := w.Stats(); st.Written != 4 || st.Lost != 0 {
		t.Fatalf("stats %+v; want 4 written (the duplicate is acknowledged too), none lost", st)
	}
}

// With no stream to write to, letters wait and are retried; once the
// stream exists they are all written.
func TestWriterRetriesUntilTheStreamIsBack(t *testing.T) {
	s := natstest.Server(t)
	w := newWriter(t, natstest.Connect(t, s), dlq.DefaultWriterConfig())
	for _, id := range []string{"a", "b", "c"} {
		w.Write(letter(id, ""))
	}
	deadline := time.Now().Add(20 * time.Second)
	for w.Stats().Retried == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no retry while the stream is missing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	js := natstest.JetStream(t, s)
	stream, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx(t))
	if info.State.Msgs != 3 || w.Stats().Lost != 0 {
		t.Fatalf("%d dead letters stored, stats %+v; want 3, none lost", info.State.Msgs, w.Stats())
	}
}

// A full buffer drops letters, counted and logged; Close that runs out of
// time counts and logs the rest as lost. Every lost push id is in the log.
func TestWriterCountsWhatItLoses(t *testing.T) {
	s := natstest.Server(t)
	cfg := dlq.DefaultWriterConfig()
	cfg.Buffer = 2
	core, logs := observer.New(zap.ErrorLevel)
	w := startWriter(t, natstest.Connect(t, s), cfg, zap.New(core)) // no stream: nothing is ever written
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		w.Write(letter(id, ""))
	}
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := w.Stop(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v; want the deadline", err)
	}
	if st := w.Stats(); st.Written != 0 || st.Lost != 5 {
		t.Fatalf("stats %+v; want all 5 lost", st)
	}
	logged := map[string]bool{}
	for _, e := range logs.FilterMessage("dead letters lost").All() {
		for _, p := range e.ContextMap()["pushes"].([]any) {
			id, _, _ := strings.Cut(p.(string), " ")
			logged[id] = true
		}
	}
	if len(logged) != 5 {
		t.Fatalf("lost push ids in the log: %v; want a, b, c, d and e", logged)
	}
}

// A stream asking for more replicas than the NATS system can place is
// refused with what to do, not only JetStream's own words.
func TestEnsureStreamExplainsReplicasItCannotPlace(t *testing.T) {
	js := natstest.JetStream(t, natstest.Server(t))
	cfg := dlq.DefaultStreamConfig()
	cfg.Replicas = 3
	_, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, cfg)
	if err == nil || !strings.Contains(err.Error(), "--dlq-replicas") || !strings.Contains(err.Error(), "3 replicas") {
		t.Fatalf("3 replicas on one server: %v; want an error saying to lower --dlq-replicas", err)
	}
}

// With AutoReplicas a new stream gets 3 replicas in a cluster and 1 on a
// single server, and an existing stream keeps its own, whatever it is.
func TestEnsureStreamChoosesReplicas(t *testing.T) {
	auto := dlq.DefaultStreamConfig()
	if auto.Replicas != dlq.AutoReplicas {
		t.Fatalf("the default asks for %d replicas", auto.Replicas)
	}
	replicas := func(js jetstream.JetStream, cfg dlq.StreamConfig) int {
		t.Helper()
		s, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Replicas
	}
	if got := replicas(natstest.JetStream(t, natstest.Server(t)), auto); got != 1 {
		t.Errorf("a single server: %d replicas; want 1", got)
	}
	cluster := natstest.Cluster(t, 3)
	js := natstest.JetStream(t, cluster[0])
	if got := replicas(js, auto); got != dlq.ClusterReplicas {
		t.Errorf("a new stream in a cluster of 3: %d replicas; want %d", got, dlq.ClusterReplicas)
	}
	one := auto
	one.Replicas = 1
	if got := replicas(js, one); got != 1 {
		t.Fatalf("scaled down to 1: %d replicas", got)
	}
	if got := replicas(natstest.JetStream(t, cluster[1]), auto); got != 1 {
		t.Errorf("an existing stream of 1 replica, from another server: %d replicas; want it kept at 1", got)
	}
}
