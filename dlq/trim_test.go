package dlq_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/tests/natstest"
)

// manyHeaders is letter id with n small headers X-H<i>: v (about 11 bytes
// each on the wire), the kind of push that once took seconds to trim.
func manyHeaders(id string, n int) dlq.Letter {
	l := letter(id, "")
	for i := range n {
		l.Header["X-H"+strconv.Itoa(i)] = []string{"v"}
	}
	return l
}

// wireSize is what h takes on the wire.
func wireSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// trimmedHeaders is the Push-Trimmed value for the headers of orig that m
// lacks: "headers <lines> <bytes>".
func trimmedHeaders(orig, m nats.Header) string {
	lines, bytes := 0, 0
	for k, vs := range orig {
		if _, ok := m[k]; !ok {
			lines += len(vs)
			bytes += wireSize(nats.Header{k: vs}) - wireSize(nats.Header{})
		}
	}
	return fmt.Sprintf("headers %d %d", lines, bytes)
}

// lostLines is the number of header lines a "headers <lines> <bytes>"
// Push-Trimmed value says were dropped, or 0.
func lostLines(v string) int {
	var lines, bytes int
	if _, err := fmt.Sscanf(v, "headers %d %d", &lines, &bytes); err != nil {
		return 0
	}
	return lines
}

// A letter with 20,000 small headers — over 64 KiB of them, under the max
// payload — fits after trimming, its dead-letter headers kept, with one
// Push-Trimmed value however many headers it lost; a letter also over the
// max payload loses its payload too, in a value of its own.
func TestLetterWithManySmallHeadersIsTrimmedToFit(t *testing.T) {
	const n, maxPayload = 20_000, 1 << 20
	for _, data := range []int{10, maxPayload} {
		l := manyHeaders("many", n)
		l.Data = make([]byte, data)
		m, err := l.Msg("push", time.Now(), maxPayload)
		if err != nil {
			t.Fatalf("%d bytes of payload: %v", data, err)
		}
		want := []string{trimmedHeaders(l.Header, m.Header)}
		if data == maxPayload {
			want = append(want, fmt.Sprintf("payload %d", data))
		}
		if got := m.Header[protocol.HeaderTrimmed]; strings.Join(got, "|") != strings.Join(want, "|") || lostLines(got[0]) < 10_000 {
			t.Errorf("%d bytes of payload: Push-Trimmed %q; want %q (over ten thousand headers)", data, got, want)
		}
		if size := wireSize(m.Header); size > 65535 || size+len(m.Data) > maxPayload || m.Header.Get(protocol.HeaderID) != "many" {
			t.Errorf("%d bytes of payload: %d bytes of headers, %d of payload, Push-Id %q; want them within 64 KiB and the max payload, the id kept",
				data, size, len(m.Data), m.Header.Get(protocol.HeaderID))
		}
		if len(l.Header) != n+2 {
			t.Errorf("the letter's own headers changed: %d of them", len(l.Header))
		}
	}
}

// The writer stores a letter with 20,000 small headers trimmed, not lost.
func TestWriterStoresALetterWithManySmallHeadersTrimmed(t *testing.T) {
	s := natstest.Server(t)
	js := natstest.JetStream(t, s)
	stream, err := dlq.EnsureStream(ctx(t), js, protocol.DefaultPrefix, dlq.DefaultStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, natstest.Connect(t, s), dlq.DefaultWriterConfig(), zap.NewNop())
	l := manyHeaders("many", 20_000)
	w.Write(l)
	if err := w.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Written != 1 || st.Trimmed != 1 || st.Lost != 0 {
		t.Fatalf("stats %+v; want 1 written, trimmed, none lost", st)
	}
	got := all(t, stream, "dlq.push.>")
	if len(got) != 1 || lostLines(got[0].Headers().Get(protocol.HeaderTrimmed)) < 10_000 {
		t.Fatalf("stored %d letters; want one with Push-Trimmed headers <over ten thousand> <bytes>", len(got))
	}
}

// Write only hands the letter over: the work it does on the caller's
// goroutine does not grow with the letter's headers. The writer's own
// goroutine is held up meanwhile (its one write in flight is never
// acknowledged), so what is counted is Write's alone.
func TestWriteWorkDoesNotGrowWithHeaders(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	got := make(chan *nats.Msg, 1)
	sub, err := nc.ChanSubscribe("dlq.push.>", got) // no stream: nothing acknowledges a write
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	cfg := dlq.DefaultWriterConfig()
	cfg.InFlight, cfg.Buffer, cfg.AckTimeout = 1, 1000, time.Hour
	w := startWriter(t, natstest.Connect(t, s), cfg, zap.NewNop())
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_ = w.Stop(c) // the letters were never going to be written
	})
	w.Write(letter("first", ""))
	select {
	case <-got: // in flight, unanswered: the writer takes nothing more
	case <-ctx(t).Done():
		t.Fatal("the first letter was never published")
	}
	work := func(n int) float64 {
		l := manyHeaders("many", n)
		return testing.AllocsPerRun(100, func() { w.Write(l) })
	}
	if small, large := work(10), work(5_000); large > 4 || large > small+1 {
		t.Fatalf("Write allocates %.0f times for a letter with 10 headers, %.0f with 5,000; want a few, the same", small, large)
	}
}
