package bus

import (
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Each push gets the receipt of its kind, which keeps its message for
// acknowledgements, dead letters and hand-overs: plain, written-ack, and
// traced around either when the push carries a trace and tracing is on.
func TestReceiptOfEachKind(t *testing.T) {
	d, l := &Dispatcher{}, &lane{}
	m := &nats.Msg{Subject: "push.s.high", Reply: "r", Header: nats.Header{protocol.HeaderTraceparent: {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}
	r, span := d.receipt(l, m, "s", push.High, &edge.Frame{ID: "id1"}, protocol.AckEnqueued)
	if p, ok := r.(*natsPush); !ok || p.m != m || p.d != d || span != nil {
		t.Fatalf("receipt of a plain push: %#v, span %v; want a *natsPush of its message, no span", r, span)
	}
	r, _ = d.receipt(l, m, "s", push.High, &edge.Frame{ID: "id1"}, protocol.AckWritten)
	if w, ok := r.(*writtenAck); !ok || w.m != m || w.d != d {
		t.Fatalf("receipt of a push waiting for written: %#v; want a *writtenAck of its message", r)
	}
	r, _ = d.receipt(l, m, "s", push.High, &edge.Frame{ID: "id1", WantsReceipt: true}, protocol.AckReceived)
	if a, ok := r.(*receivedAck); !ok || a.m != m || a.d != d {
		t.Fatalf("receipt of a push waiting for received: %#v; want a *receivedAck of its message", r)
	}
	exp := tracetest.NewInMemoryExporter()
	d.tracer = sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)).Tracer("test")
	for _, mode := range []string{protocol.AckNone, protocol.AckWritten} {
		r, span = d.receipt(l, m, "s", push.High, &edge.Frame{ID: "id1"}, mode)
		tp, ok := r.(*tracedPush)
		if !ok || span == nil || tp.span != span {
			t.Fatalf("receipt of a traced push (%s): %#v; want a *tracedPush with its span", mode, r)
		}
		if _, plain := tp.inner.(*natsPush); plain != (mode == protocol.AckNone) {
			t.Fatalf("traced push (%s) around %T", mode, tp.inner)
		}
	}
	m.Header = nil
	if r, span = d.receipt(l, m, "s", push.High, &edge.Frame{ID: "id1"}, protocol.AckNone); span != nil {
		t.Fatalf("a push without traceparent was traced: %#v", r)
	}
}

// A plain push's receipt costs no allocation of its own, and lets go of
// its message once settled: a block of receipts outlives its pushes only
// with the messages still queued.
func TestPlainReceiptIsFreeAndLetsGo(t *testing.T) {
	d, l := &Dispatcher{}, &lane{}
	m := &nats.Msg{Subject: "push.s.high"}
	var r edge.Receipt
	if n := testing.AllocsPerRun(1000, func() { r, _ = d.receipt(l, m, "s", push.High, &edge.Frame{ID: "id"}, protocol.AckNone) }); n > 0.05 {
		t.Errorf("a plain receipt costs %v allocations; want none of its own", n)
	}
	r.Written(&edge.Envelope{Frame: edge.Frame{ID: "id"}})
	if p := r.(*natsPush); p.m != nil {
		t.Error("a written push's receipt still holds its message")
	}
}

// The dispatch lane's per-push work for a plain push: its envelope and its
// receipt.
func BenchmarkDispatchReceipt(b *testing.B) {
	ids := newIDSource()
	d, l := &Dispatcher{}, &lane{}
	m := &nats.Msg{Subject: "push.session-42.high", Header: nats.Header{protocol.HeaderID: {"7JrKy7XzBuzdRkfXsEFvFf"},
		protocol.HeaderAck: {protocol.AckNone}, protocol.HeaderSentAt: {"2026-11-28T03:04:05.123456789Z"}}, Data: make([]byte, 128)}
	b.ReportAllocs()
	for b.Loop() {
		e, mode, err := envelopeOf(m, &ids)
		if err != nil {
			b.Fatal(err)
		}
		e.Receipt, _ = d.receipt(l, m, "session-42", push.High, &e.Frame, mode)
	}
}

// A member's copy of a group push costs no allocation of its own (its
// receipt comes from the lane's block; the envelope and payload are
// shared), and lets go of the shared message once settled.
func TestGroupCopyIsFreeAndLetsGo(t *testing.T) {
	d, l := &Dispatcher{}, &lane{}
	m := &nats.Msg{Subject: "push.group.g.high"}
	var r *groupCopy
	if n := testing.AllocsPerRun(1000, func() { r = l.fan.copies.next(m, d, "g") }); n > 0.05 {
		t.Errorf("a member copy's receipt costs %v allocations; want none of its own", n)
	}
	r.Written(&edge.Envelope{Frame: edge.Frame{ID: "id"}})
	if r.m != nil {
		t.Error("a written copy's receipt still holds the group push")
	}
}
