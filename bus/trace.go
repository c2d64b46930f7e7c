package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// tracedPush is the receipt of a push whose delivery is traced: the span
// follows it from dispatch through its queue to its write, its dead letter
// or its hand-over, around the receipt of its kind.
type tracedPush struct {
	inner edge.Receipt
	span  trace.Span
}

func (r *tracedPush) Written(e *edge.Envelope) {
	endSpan(r.span, "")
	r.inner.Written(e)
}

func (r *tracedPush) Dead(dl edge.DeadLetter) {
	endSpan(r.span, string(dl.Reason))
	r.inner.Dead(dl)
}

func (r *tracedPush) Moved(session string, e *edge.Envelope) {
	r.span.AddEvent("forwarded to the session's new node")
	r.span.End()
	r.inner.Moved(session, e)
}

// Confirmed passes a receipt-push's confirmation on; the span ended when
// it was written.
func (r *tracedPush) Confirmed(e *edge.Envelope) {
	if c, ok := r.inner.(edge.Confirmable); ok {
		c.Confirmed(e)
	}
}

var propagator = propagation.TraceContext{}

// traceDelivery continues the producer's trace, if the push carries one and
// tracing is on, with a receipt around r; nil otherwise.
func (d *Dispatcher) traceDelivery(r edge.Receipt, m *nats.Msg, session string, p push.Priority, id string) *tracedPush {
	span := d.consumerSpan(m, "pushfabric.deliver", p, id, attribute.String("pushfabric.session", session))
	if span == nil {
		return nil
	}
	return &tracedPush{inner: r, span: span}
}

// traceFanout starts the span of a group push's fan-out on this node,
// child of the producer's, when tracing is on and the push carries a
// traceparent: one span for the node, however many members (nil
// otherwise). The caller ends it with the members it was queued for.
func (d *Dispatcher) traceFanout(m *nats.Msg, group string, p push.Priority, id string) trace.Span {
	return d.consumerSpan(m, "pushfabric.fanout", p, id, attribute.String("pushfabric.group", group))
}

// consumerSpan starts a span named name on this node, child of the
// producer's span m carries, with the push's attributes and who (its
// session or group); nil when tracing is off or m carries no traceparent.
func (d *Dispatcher) consumerSpan(m *nats.Msg, name string, p push.Priority, id string, who attribute.KeyValue) trace.Span {
	if d.tracer == nil || m.Header.Get(protocol.HeaderTraceparent) == "" {
		return nil
	}
	ctx := propagator.Extract(context.Background(), protocol.Carrier(m.Header))
	_, span := d.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", m.Subject),
			who,
			attribute.String("pushfabric.priority", p.String()),
			attribute.String("pushfabric.push_id", id),
			attribute.String("pushfabric.node", d.node),
		))
	return span
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
