package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// tracedMsg is a push's Meta when something waits for its write: the span
// that follows it from dispatch through its queue to its write (or its dead
// letter), when its delivery is traced, or a producer that asked for a
// `written` acknowledgement. Other pushes keep the bare message, which
// their write does not touch.
type tracedMsg struct {
	*nats.Msg
	span       trace.Span // nil: not traced
	ackWritten bool       // the producer waits for `written` (on the message's reply subject)
}

// msgOf returns the NATS message behind a frame's Meta and its span, if
// traced.
func msgOf(meta any) (*nats.Msg, trace.Span) {
	switch m := meta.(type) {
	case *nats.Msg:
		return m, nil
	case *tracedMsg:
		return m.Msg, m.span
	}
	return nil, nil
}

var propagator = propagation.TraceContext{}

// traceDelivery continues the producer's trace, if the push carries one and
// tracing is on: the returned Meta holds the span.
func (d *Dispatcher) traceDelivery(m *nats.Msg, session string, p push.Priority, id string) any {
	if d.tracer == nil || m.Header.Get(protocol.HeaderTraceparent) == "" {
		return m
	}
	ctx := propagator.Extract(context.Background(), protocol.Carrier(m.Header))
	_, span := d.tracer.Start(ctx, "pushfabric.deliver", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", m.Subject),
			attribute.String("pushfabric.session", session),
			attribute.String("pushfabric.priority", p.String()),
			attribute.String("pushfabric.push_id", id),
			attribute.String("pushfabric.node", d.node),
		))
	return &tracedMsg{Msg: m, span: span}
}

// endSpan finishes a delivery span: written, or dead with a reason.
func endSpan(span trace.Span, deadReason string) {
	if span == nil {
		return
	}
	if deadReason != "" {
		span.SetAttributes(attribute.String("pushfabric.dead_reason", deadReason))
		span.SetStatus(codes.Error, "dead-lettered: "+deadReason)
	} else {
		span.AddEvent("written")
	}
	span.End()
}
