package bus

import (
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/dlq"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Sink is the edge's dead-letter sink on a node: every dead letter goes to
// the dlq writer, and a producer still waiting for a `written`
// acknowledgement is told the push is dead instead.
type Sink struct {
	w      *dlq.Writer
	prefix string
	node   string
	conn   *Conn // producers are answered on its NC, once it has started
	m      *Metrics
	log    *zap.Logger

	deadLetters atomic.Uint64 // handed to the writer
}

// NewSink writes dead letters with w and answers producers on c, counting
// in m (nil: nowhere anyone looks) and logging each dead letter at debug
// level on log (nil: nowhere). It starts nothing; it takes dead letters
// once c and w have started.
func NewSink(w *dlq.Writer, c *Conn, m *Metrics, log *zap.Logger) *Sink {
	if m == nil {
		m = NewMetrics()
	}
	if log == nil {
		log = zap.NewNop()
	}
	id := c.Identity()
	return &Sink{w: w, prefix: id.Prefix, node: id.Node, conn: c, m: m, log: log}
}

// DeadLetter implements edge.DeadLetterSink. It never blocks.
func (s *Sink) DeadLetter(dl edge.DeadLetter) {
	if _, ok := dl.Frame.Meta.(*parked); ok {
		return // a redelivered parked push: its dead letter is still in the stream
	}
	m, span := msgOf(dl.Frame.Meta)
	endSpan(span, string(dl.Reason))
	if tm, ok := dl.Frame.Meta.(*tracedMsg); ok && tm.ackWritten {
		s.ack(m, protocol.StatusDead, string(dl.Reason), dl.Frame.ID)
	}
	s.write(dl.Session, dl.Priority.String(), dl.Reason, m, &dl.Frame)
}

// write counts a dead letter and hands it to the writer.
func (s *Sink) write(session, priority string, reason push.Reason, m *nats.Msg, f *edge.Frame) {
	s.m.deadLetter(reason)
	s.deadLetters.Add(1)
	l := s.letter(session, priority, reason, m, f)
	if ce := s.log.Check(zap.DebugLevel, "push dead-lettered"); ce != nil {
		ce.Write(zap.String("session", session), zap.String("push_id", l.Header.Get(protocol.HeaderID)),
			zap.String("priority", priority), zap.String("reason", string(reason)))
	}
	s.w.Write(l)
}

// letter builds the dead letter for a push: from its NATS message when it
// came over NATS, from the frame when it was pushed in the process.
func (s *Sink) letter(session, priority string, reason push.Reason, m *nats.Msg, f *edge.Frame) dlq.Letter {
	if m == nil {
		m = pushMsg(s.prefix, session, f)
	} else if f != nil {
		stampID(m, f.ID)
	}
	return dlq.Letter{
		Subject: m.Subject, Session: session, Priority: priority, Reason: reason, Node: s.node,
		Header: m.Header, Data: m.Data,
	}
}

// pushMsg is the NATS message of a push made in the process, as a producer
// would have published it.
func pushMsg(prefix, session string, f *edge.Frame) *nats.Msg {
	h := nats.Header{protocol.HeaderID: []string{f.ID}}
	if f.ContentType != "" {
		h.Set(protocol.HeaderContentType, f.ContentType)
	}
	if !f.Expires.IsZero() {
		h.Set(protocol.HeaderExpires, push.FormatTime(f.Expires))
	}
	return &nats.Msg{Subject: protocol.PushSubject(prefix, session, f.Priority.String()), Header: h, Data: f.Payload}
}

// ack answers the producer of m, if it asked.
func (s *Sink) ack(m *nats.Msg, status, reason, id string) {
	if m.Reply == "" {
		return
	}
	s.m.ack(status)
	_ = s.conn.NC.PublishMsg(protocol.Ack{Status: status, Reason: reason, Node: s.node, ID: id}.Msg(m.Reply))
}
