package tests

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// sentPush is what a test published, to check its delivery or its dead
// letter against.
type sentPush struct {
	target      string // session, or the group's letter session
	online      bool
	payload     []byte
	contentType string
	headers     map[string]string // the options' other headers
}

// frames records every push a set of clients received, by id.
type frames struct {
	mu  sync.Mutex
	got map[string][]client.Frame
	to  map[string]string // push id → the session that received it
}

func (f *frames) on(session string) func(client.Frame) {
	return func(fr client.Frame) {
		f.mu.Lock()
		defer f.mu.Unlock()
		fr.Payload = bytes.Clone(fr.Payload)
		f.got[fr.ID] = append(f.got[fr.ID], fr)
		f.to[fr.ID] = session
	}
}

func (f *frames) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// dlqHeaders are the headers a dead letter adds to a push's own, and the
// producer's own headers: none is an option's.
var dlqHeaders = map[string]bool{
	protocol.HeaderReason: true, protocol.HeaderSubject: true, protocol.HeaderSession: true, protocol.HeaderPriority: true,
	protocol.HeaderNode: true, protocol.HeaderDeadAt: true, protocol.HeaderReplayCount: true, protocol.HeaderDeadID: true,
	protocol.HeaderID: true, protocol.HeaderSentAt: true, protocol.HeaderAck: true, protocol.HeaderGroup: true,
	protocol.HeaderContentType: true, "Nats-Msg-Id": true,
}

// Many goroutines publish at once, through the one message Publish reuses,
// to sessions online and offline and to groups with no member, with every
// kind of option and refused pushes in between: every push delivered is
// delivered exactly as sent, every offline one is exactly one dead letter
// carrying its own id, payload, content type and headers and nothing of
// another push's, and the stats add up.
func TestPublishConcurrentAccounting(t *testing.T) {
	s := natstest.Server(t)
	n := startEdge(t, edgeConfig(t, s, "A"))
	got := &frames{got: map[string][]client.Frame{}, to: map[string]string{}}
	const online = 4
	for i := range online {
		session := fmt.Sprintf("on%d", i)
		dial(t, n.tcp(), session, client.Options{OnPush: got.on(session)})
	}
	nc := natstest.Connect(t, s)
	p, err := producer.New(nc, producer.Options{Name: "crowd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(timeout(t)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	sent := map[string]sentPush{}
	refused := 0
	publish := func(w, i, kind int) {
		id := fmt.Sprintf("w%d-%d", w, i)
		payload := []byte("payload of " + id)
		sp := sentPush{payload: payload, headers: map[string]string{}}
		var opts []producer.Option
		if kind%2 == 0 {
			sp.contentType = "text/x-" + id
			opts = append(opts, producer.WithContentType(sp.contentType))
		}
		if kind%3 == 0 {
			sp.headers["X-Who"] = id
			sp.headers["X-Only-"+id] = "1"
			opts = append(opts, producer.WithHeader("X-Who", id), producer.WithHeader("X-Only-"+id, "1"))
		}
		if kind == 4 {
			opts = append(opts, producer.WithExpiry(time.Now().Add(time.Hour)))
		}
		opts = append(opts, producer.WithID(id))
		var err error
		switch kind {
		case 0, 1, 2, 3:
			sp.target, sp.online = fmt.Sprintf("on%d", i%online), true
			err = p.Publish(sp.target, push.Priority(i%2), payload, opts...)
		case 4, 5:
			sp.target = fmt.Sprintf("off%d", i%5)
			err = p.Publish(sp.target, push.Priority(i%2), payload, opts...)
		case 6:
			sp.target = protocol.GroupLetterSession("nobody" + fmt.Sprint(i%3))
			err = p.PublishGroup("nobody"+fmt.Sprint(i%3), push.Low, payload, opts...)
		case 7: // refused after some options set headers
			err = p.Publish("off9", push.High, payload, producer.WithHeader("X-Leak", id), producer.WithAck(protocol.AckWritten),
				producer.WithID(""))
		case 8: // refused as a group push
			err = p.PublishGroup("nobody9", push.High, payload, producer.WithContentType("leak/"+id), producer.WithAck(protocol.AckWritten))
		}
		mu.Lock()
		defer mu.Unlock()
		if kind >= 7 {
			if err == nil {
				t.Errorf("push %s (kind %d) taken; want it refused", id, kind)
			}
			refused++
			return
		}
		if err != nil {
			t.Errorf("push %s (kind %d): %v", id, kind, err)
			return
		}
		sent[id] = sp
	}
	const workers, each = 8, 400
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 18))
			for i := range each {
				publish(w, i, r.IntN(9))
			}
		})
	}
	wg.Wait()
	if err := p.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}
	var offline, delivered int
	for _, sp := range sent {
		if sp.online {
			delivered++
		} else {
			offline++
		}
	}
	if st := p.Stats(); st.Published != uint64(len(sent)) || st.Offline != uint64(offline) || st.Untracked != 0 {
		t.Errorf("stats %+v; want %d published, %d offline, none untracked", st, len(sent), offline)
	}
	waitFor(t, "every online push delivered", func() bool { return got.count() >= delivered })

	got.mu.Lock()
	for id, fs := range got.got {
		sp, ok := sent[id]
		switch {
		case !ok || !sp.online:
			t.Errorf("client %s received push %q, not sent to it", got.to[id], id)
		case len(fs) != 1:
			t.Errorf("push %s received %d times", id, len(fs))
		case got.to[id] != sp.target || !bytes.Equal(fs[0].Payload, sp.payload) || fs[0].ContentType != sp.contentType:
			t.Errorf("push %s received by %s as %q (%q); sent to %s as %q (%q)", id, got.to[id], fs[0].Payload, fs[0].ContentType,
				sp.target, sp.payload, sp.contentType)
		}
	}
	got.mu.Unlock()

	letters := deadLetters(t, s)
	seen := map[string]int{}
	for _, dl := range letters {
		id := dl.Header.Get(protocol.HeaderID)
		seen[id]++
		sp, ok := sent[id]
		if !ok || sp.online {
			t.Errorf("dead letter %s for push %q (%v), not an offline push", dl.Subject, id, dl.Header)
			continue
		}
		checkLetter(t, dl, id, sp)
	}
	for id, sp := range sent {
		if !sp.online && seen[id] != 1 {
			t.Errorf("offline push %s to %s: %d dead letters; want 1", id, sp.target, seen[id])
		}
	}
	if len(letters) != offline {
		t.Errorf("%d dead letters; want %d", len(letters), offline)
	}
	t.Logf("%d pushes: %d delivered, %d dead-lettered offline, %d refused", len(sent), delivered, offline, refused)
}

// checkLetter checks that dead letter dl is push id as sent: its payload,
// content type and headers, and none of another push's.
func checkLetter(t *testing.T, dl deadLetter, id string, sp sentPush) {
	t.Helper()
	if dl.Header.Get(protocol.HeaderReason) != string(push.ReasonOffline) || dl.Header.Get(protocol.HeaderSession) != sp.target {
		t.Errorf("dead letter of %s: reason %q, session %q; want offline, %s", id, dl.Header.Get(protocol.HeaderReason),
			dl.Header.Get(protocol.HeaderSession), sp.target)
	}
	if !bytes.Equal(dl.Data, sp.payload) {
		t.Errorf("dead letter of %s: payload %q; want %q", id, dl.Data, sp.payload)
	}
	if ct := dl.Header.Get(protocol.HeaderContentType); ct != sp.contentType || len(dl.Header[protocol.HeaderContentType]) > 1 {
		t.Errorf("dead letter of %s: Content-Type %q; want %q", id, dl.Header.Values(protocol.HeaderContentType), sp.contentType)
	}
	if ack := dl.Header.Values(protocol.HeaderAck); !slices.Equal(ack, []string{protocol.AckNone}) {
		t.Errorf("dead letter of %s: Push-Ack %q; want none", id, ack)
	}
	others := map[string]string{}
	for k, v := range dl.Header {
		if !dlqHeaders[k] && k != protocol.HeaderExpires {
			others[k] = strings.Join(v, ",")
		}
	}
	if !maps.Equal(others, sp.headers) {
		t.Errorf("dead letter of %s: headers %v; want %v", id, others, sp.headers)
	}
}

// inboxSpy is an outsider on an open NATS server: subscribed to _INBOX.>,
// it sees every producer's marks and learns their subject and content.
type inboxSpy struct {
	nc    *nats.Conn
	marks chan *nats.Msg // every mark seen; capacity 1024, the rest dropped
}

func spyOnInboxes(t *testing.T, s *server.Server) *inboxSpy {
	t.Helper()
	sp := &inboxSpy{nc: natstest.Connect(t, s), marks: make(chan *nats.Msg, 1024)}
	if _, err := sp.nc.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if strings.HasSuffix(m.Subject, "._mark") {
			select {
			case sp.marks <- m:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := sp.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sp
}

// forgeries are marks made of a real one, claiming every push sent: the
// largest sequence number in place of the first or the last word.
func forgeries(real []byte) [][]byte {
	const top = "3w5e11264sgsf" // math.MaxUint64 in base 36
	w := strings.Fields(string(real))
	var out [][]byte
	for _, i := range []int{0, len(w) - 1} {
		f := slices.Clone(w)
		f[i] = top
		out = append(out, []byte(strings.Join(f, " ")))
	}
	return out
}

// An outsider who reads the producer's marks on an open NATS server and
// sends marks of its own claiming every push answered, over and over, has
// no offline push forgotten before NATS's "no responders" for it came: each
// is dead-lettered all the same.
func TestForgedMarksLoseNoPush(t *testing.T) {
	s := natstest.Server(t)
	startEdge(t, edgeConfig(t, s, "A")) // makes PUSH_DLQ
	spy := spyOnInboxes(t, s)
	p := newProducer(t, natstest.Connect(t, s), "marked")
	if err := p.Publish("first", push.High, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var real *nats.Msg
	select {
	case real = <-spy.marks:
	case <-timeout(t).Done():
		t.Fatal("no mark seen")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, f := range forgeries(real.Data) {
				_ = spy.nc.Publish(real.Subject, f)
			}
			select {
			case <-stop:
				return
			default:
			}
			_ = spy.nc.Flush() // paced by the round trip: no slow consumer
		}
	})
	const n = 3000
	for i := range n {
		if err := p.Publish(fmt.Sprintf("off%d", i%10), push.High, []byte("x"), producer.WithID(fmt.Sprintf("f%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if st := p.Stats(); st.Offline != n+1 || st.Forged == 0 {
		t.Errorf("stats %+v; want all %d pushes offline, dead-lettered, and the forged marks counted", st, n+1)
	}
	if got := len(deadLetters(t, s)); got != n+1 {
		t.Errorf("%d dead letters; want %d", got, n+1)
	}
}

// The same outsider sends "no responders" answers of its own for the
// sequence numbers the marks show coming, for pushes to sessions that are
// online, while they are published: none becomes a dead letter, and every
// one is delivered.
func TestForgedNoRespondersMakeNoDeadLetters(t *testing.T) {
	s := natstest.Server(t)
	cfg := edgeConfig(t, s, "A")
	cfg.Edge.QueueLen = 8192 // room for every push: none is queue_full
	n := startEdge(t, cfg)
	got := &frames{got: map[string][]client.Frame{}, to: map[string]string{}}
	const sessions = 8
	for i := range sessions {
		session := fmt.Sprintf("bob%d", i)
		dial(t, n.tcp(), session, client.Options{OnPush: got.on(session)})
	}
	spy := spyOnInboxes(t, s)
	p := newProducer(t, natstest.Connect(t, s), "answered")
	stop := make(chan struct{})
	var bursts atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var mark *nats.Msg
			select {
			case <-stop:
				return
			case mark = <-spy.marks:
			}
			inbox := strings.TrimSuffix(mark.Subject, "._mark")
			for _, w := range strings.Fields(string(mark.Data)) {
				head, err := strconv.ParseUint(w, 36, 64)
				if err != nil || head > 1<<40 {
					continue
				}
				for seq := head + 1; seq < head+400; seq++ {
					subject := inbox + "." + strconv.FormatUint(seq, 36)
					_ = spy.nc.PublishMsg(&nats.Msg{Subject: subject, Header: nats.Header{"Status": {"503"}}})
					_ = spy.nc.PublishMsg(&nats.Msg{Subject: subject, Header: nats.Header{"Status": {"503"}, "Nats-Subject": {"push.bob0.low"}}})
				}
			}
			_ = spy.nc.Flush()
			bursts.Add(1)
		}
	})
	// Published until the outsider has answered ahead of a few dozen marks.
	pushes := 0
	for ; bursts.Load() < 30 && pushes < 200_000; pushes++ {
		if err := p.Publish(fmt.Sprintf("bob%d", pushes%sessions), push.High, []byte("x"), producer.WithID(fmt.Sprintf("b%d", pushes))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Stop(timeout(t)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if letters := deadLetters(t, s); len(letters) != 0 {
		t.Errorf("%d dead letters for %d pushes to sessions online, the first %v; want none", len(letters), pushes, letters[0].Header)
	}
	if st := p.Stats(); st.Offline != 0 || st.Forged == 0 {
		t.Errorf("stats %+v; want none offline, the forged answers counted", st)
	}
	waitFor(t, "every push delivered", func() bool { return got.count() == pushes })
}
