package producer

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Publish sends a push without waiting. If no node holds the session, the
// push is dead-lettered as offline shortly after: NATS says so within a
// round trip (see mark), and Options.StatusWindow bounds the wait. An
// error means the push was not sent.
//
// It is the fast path: the push is built in the producer's one reused
// message (scratch), its id, subjects and send time in blocks of strings,
// and the ring keeps of it only what a dead letter needs, so that a push
// costs about what a plain publish of the same bytes does (BENCHMARKS.md,
// "Producer").
func (p *Producer) Publish(session string, prio push.Priority, payload []byte, opts ...Option) error {
	if !p.running.Load() {
		return ErrNotRunning
	}
	if err := push.CheckSession(session); err != nil { // all or group would address the group subjects
		return err
	}
	return p.publish(session, false, prio, payload, opts)
}

// publish sends a push to a session, or to a group (group set), tracked;
// past MaxTracked it is built apart and sent untracked (and counted).
func (p *Producer) publish(name string, group bool, prio push.Priority, payload []byte, opts []Option) error {
	if !prio.Valid() {
		return fmt.Errorf("%v: want high or low", prio)
	}
	tracked, err := p.publishTracked(p.tracer.get(), name, group, prio, payload, opts)
	if !tracked {
		p.untracked.Add(1)
		err = p.publishUntracked(name, group, prio, payload, opts)
	}
	if err != nil {
		return err
	}
	p.published.Add(1)
	return nil
}

// publishTracked is publishTrackedLocked under p.mu, which it lets go of
// even when an option of the caller's panics.
func (p *Producer) publishTracked(tracer trace.Tracer, name string, group bool, prio push.Priority, payload []byte,
	opts []Option) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.publishTrackedLocked(tracer, name, group, prio, payload, opts)
}

// publishTrackedLocked builds the push in the producer's one message
// (scratch), sends it and keeps it in a slot of the ring, or says it was not
// tracked (the ring holds MaxTracked pushes). p.mu is held. Whatever
// happens, refused, not sent or an option panicking, the message is left
// empty for the next push, and the slot free unless the push was sent.
func (p *Producer) publishTrackedLocked(tracer trace.Tracer, name string, group bool, prio push.Priority, payload []byte,
	opts []Option) (bool, error) {
	now := time.Now()
	s, ok := p.tracked.add(now.Sub(p.epoch)+p.opts.StatusWindow, p.opts.MaxTracked)
	if !ok {
		return false, nil
	}
	sent := false
	defer func() {
		if !sent {
			p.tracked.free(s)
			p.signalEmptyLocked()
		}
		p.scratch.reset()
	}()
	m, b := &p.scratch.msg, &p.strs
	own, err := p.fillLocked(name, group, prio, payload, opts)
	if err != nil {
		return true, err
	}
	if tracer != nil {
		span := startSpan(tracer, context.Background(), m, target(name, group))
		defer span.End()
	}
	h := m.Header
	p.scratch.sentAt[0] = p.stamps.Stamp(b, now)
	h[protocol.HeaderSentAt], h[protocol.HeaderAck] = p.scratch.sentAt[:], ackNone
	reply := append(append(p.scratch.buf[:0], p.inbox...), '.')
	p.scratch.buf = strconv.AppendUint(reply, s.seq, 36)
	m.Reply = b.Make(p.scratch.buf)
	if err := p.nc.PublishMsg(m); err != nil {
		return true, fmt.Errorf("publish to %s: %w", what(name, group), err)
	}
	s.name, s.group, s.prio = name, group, prio
	s.keep(m, own, h[protocol.HeaderID][0], p.scratch.sentAt[0])
	sent = true
	return true, nil
}

// fillLocked puts the push in the producer's message: its subject,
// payload, options' headers, Push-Group for a group push and its id, minted
// unless an option set one. It returns how many of the headers are the
// producer's own (see slot.keep), Push-Sent-At and Push-Ack counted,
// which the caller sets.
func (p *Producer) fillLocked(name string, group bool, prio push.Priority, payload []byte, opts []Option) (int, error) {
	m, h, b := &p.scratch.msg, p.scratch.msg.Header, &p.strs
	m.Data = payload
	h[protocol.HeaderID] = p.scratch.id[:] // empty: an id is minted below unless an option sets one
	if group {
		m.Subject = protocol.GroupSubjectIn(b, p.opts.Prefix, name, prio.String())
	} else {
		m.Subject = protocol.PushSubjectIn(b, p.opts.Prefix, name, prio.String())
	}
	for _, o := range opts {
		if err := o(m); err != nil {
			return 0, err
		}
	}
	own := 3 // Push-Id, Push-Sent-At, Push-Ack
	if group {
		if err := groupAckAllowed(h); err != nil {
			return 0, err
		}
		p.scratch.group[0] = name
		h[protocol.HeaderGroup], own = p.scratch.group[:], own+1
	}
	// No WithID, or an option of the caller's that took the id away: as
	// Push does, the push gets one.
	if id := h[protocol.HeaderID]; len(id) == 0 || id[0] == "" {
		p.scratch.id[0] = p.ids.Next(b)
		h[protocol.HeaderID] = p.scratch.id[:]
	}
	return own, nil
}

// scratch is the message a tracked push is built in, and the values of
// the headers the producer sets, reused push after push.
type scratch struct {
	msg               nats.Msg
	id, sentAt, group [1]string
	buf               []byte // where the reply subject is put together
}

// reset empties the message for the next push and lets go of what it held
// of the caller's. The header map is kept, and so are its entries when
// they are only the producer's own three as a push sent leaves them, which
// the next push sets again. Anything else is cleared: a push refused after
// its options ran leaves their headers, and perhaps its Push-Ack, which
// would otherwise go out with the next push (or refuse it, as a group
// push with Push-Ack written).
func (s *scratch) reset() {
	if s.msg.Header == nil {
		s.msg.Header = nats.Header{}
	}
	if !s.onlyOwnHeaders() {
		clear(s.msg.Header)
	}
	s.msg.Subject, s.msg.Reply, s.msg.Data = "", "", nil
	s.id[0], s.sentAt[0], s.group[0] = "", "", ""
}

// onlyOwnHeaders reports whether the message's headers are Push-Id,
// Push-Sent-At and Push-Ack none, and no other.
func (s *scratch) onlyOwnHeaders() bool {
	h := s.msg.Header
	ack := h[protocol.HeaderAck]
	return len(h) == 3 && len(h[protocol.HeaderID]) > 0 && len(h[protocol.HeaderSentAt]) > 0 && len(ack) == 1 && ack[0] == ackNone[0]
}

// publishUntracked sends a push with no reply subject: if its session is
// offline it is lost, as with a plain NATS publish (Stats.Untracked).
func (p *Producer) publishUntracked(name string, group bool, prio push.Priority, payload []byte, opts []Option) error {
	var m *nats.Msg
	var span trace.Span
	var err error
	if group {
		m, span, err = p.groupMsg(context.Background(), name, prio, payload, opts)
	} else {
		m, span, err = p.msg(context.Background(), name, prio, payload, opts)
	}
	if err != nil {
		return err
	}
	defer span.End()
	m.Header[protocol.HeaderAck] = ackNone
	if err := p.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("publish to %s: %w", what(name, group), err)
	}
	return nil
}

// markToken is the last token of the marks' subject: not a sequence
// number, which is base 36.
const markToken = "_mark"

func what(name string, group bool) string {
	if group {
		return "group " + name
	}
	return name
}

func target(name string, group bool) attribute.KeyValue {
	if group {
		return attribute.String("pushfabric.group", name)
	}
	return attribute.String("pushfabric.session", name)
}

var producerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}

// startSpan starts a push's producer span (the caller ends it) and puts
// its context in the push's headers. The span keeps copies of what it
// reads of m: a tracked push's strings live in the producer's blocks, which
// outlive the push but are no business of an exporter.
func startSpan(tracer trace.Tracer, ctx context.Context, m *nats.Msg, target attribute.KeyValue) trace.Span {
	_, span := tracer.Start(ctx, "pushfabric.push", producerSpan...)
	if span.IsRecording() { // nothing to build when tracing is off
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject),
			target, attribute.String("pushfabric.push_id", m.Header.Get(protocol.HeaderID)))
		propagation.TraceContext{}.Inject(trace.ContextWithSpan(ctx, span), protocol.Carrier(m.Header))
	}
	return span
}

// startSpan is startSpan with the producer's tracer, or a span that does
// nothing when there is none.
func (p *Producer) startSpan(ctx context.Context, m *nats.Msg, target attribute.KeyValue) trace.Span {
	if tracer := p.tracer.get(); tracer != nil {
		return startSpan(tracer, ctx, m, target)
	}
	return trace.SpanFromContext(context.Background()) // a span that does nothing
}

const tracerName = "github.com/pushfabric/pushfabric/producer"

// tracers gives the producer's tracer: Options.TracerProvider's, or while
// that is nil OpenTelemetry's global provider's, or nil when nobody set a
// global provider, so that a program that traces nothing pays nothing for
// it (OpenTelemetry's default global provider makes spans that do
// nothing, yet each costs allocations).
type tracers struct {
	provider trace.TracerProvider // nil: the global one
	cached   atomic.Pointer[providerTracer]
}

type providerTracer struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
}

// defaultGlobal is the type of OpenTelemetry's global provider while no
// program has set one: a delegate that makes spans that do nothing until
// otel.SetTracerProvider (after which otel.GetTracerProvider returns the
// provider set). Nil if a provider was set before this package's init.
var defaultGlobal = func() reflect.Type {
	t := reflect.TypeOf(otel.GetTracerProvider())
	if t.String() != "*global.tracerProvider" {
		return nil
	}
	return t
}()

func (t *tracers) get() trace.Tracer {
	provider := t.provider
	if provider == nil {
		provider = otel.GetTracerProvider()
		if reflect.TypeOf(provider) == defaultGlobal {
			return nil
		}
	}
	if c := t.cached.Load(); c != nil && c.provider == provider {
		return c.tracer
	}
	c := &providerTracer{provider: provider, tracer: provider.Tracer(tracerName)}
	t.cached.Store(c)
	return c.tracer
}
