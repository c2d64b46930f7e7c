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

// Sink writes a node's dead letters with the dlq writer and answers
// producers: the receipts of pushes that came over NATS, the dispatcher
// and the hand-overs write through it, and it is the edge's dead-letter
// sink for the pushes made in the process.
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

// DeadLetter implements edge.DeadLetterSink, for the pushes made in the
// process (those with no receipt): the dead letter is the message a
// producer would have published. It never blocks.
func (s *Sink) DeadLetter(dl edge.DeadLetter) {
	s.write(dl.Session, dl.Priority.String(), dl.Reason, nil, &dl.Envelope)
}

// write counts a dead letter and hands it to the writer.
func (s *Sink) write(session, priority string, reason push.Reason, m *nats.Msg, e *edge.Envelope) {
	s.send(s.letter(session, priority, reason, m, e))
}

// writeInvalid is write for an invalid push from NATS, saying what was
// invalid (the letter's Push-Invalid).
func (s *Sink) writeInvalid(session, priority string, m *nats.Msg, why error) {
	l := s.letter(session, priority, push.ReasonInvalid, m, nil)
	l.Invalid = why.Error()
	s.send(l)
}

// send counts a dead letter and hands it to the writer.
func (s *Sink) send(l dlq.Letter) {
	session, priority, reason := l.Session, l.Priority, l.Reason
	s.m.deadLetter(reason)
	s.deadLetters.Add(1)
	if ce := s.log.Check(zap.DebugLevel, "push dead-lettered"); ce != nil {
		ce.Write(zap.String("session", session), zap.String("push_id", l.Header.Get(protocol.HeaderID)),
			zap.String("priority", priority), zap.String("reason", string(reason)))
	}
	s.w.Write(l)
}

// letter builds the dead letter for a push: from its NATS message when it
// came over NATS, from its envelope when it was pushed in the process.
func (s *Sink) letter(session, priority string, reason push.Reason, m *nats.Msg, e *edge.Envelope) dlq.Letter {
	if m == nil {
		m = pushMsg(s.prefix, session, e)
	} else if e != nil {
		stampID(m, e.Frame.ID)
	}
	return dlq.Letter{
		Subject: m.Subject, Session: session, Priority: priority, Reason: reason, Node: s.node,
		Header: m.Header, Data: m.Data,
	}
}

// pushMsg is the NATS message of a push made in the process, as a producer
// would have published it.
func pushMsg(prefix, session string, e *edge.Envelope) *nats.Msg {
	f := &e.Frame
	h := nats.Header{protocol.HeaderID: []string{f.ID}}
	if f.ContentType != "" {
		h.Set(protocol.HeaderContentType, f.ContentType)
	}
	if !e.Expires.IsZero() {
		h.Set(protocol.HeaderExpires, push.FormatTime(e.Expires))
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
