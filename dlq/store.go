package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Filter selects dead letters. Empty fields match everything.
type Filter struct {
	Reason   string
	Session  string
	Priority string    // high or low
	Since    time.Time // dead letters stored at or after this time
	Limit    int       // at most this many, oldest first; 0: all
}

// Validate reports a filter that cannot match anything well-formed.
func (f Filter) Validate() error {
	var errs []error
	if f.Reason != "" && !push.Reason(f.Reason).Known() {
		errs = append(errs, fmt.Errorf("reason %q: want one of %s", f.Reason, reasonList()))
	}
	if f.Session != "" {
		errs = append(errs, push.CheckName("session", f.Session))
	}
	if f.Priority != "" {
		_, err := push.ParsePriority(f.Priority)
		errs = append(errs, err)
	}
	if f.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d: want 0 (all) or more", f.Limit))
	}
	return errors.Join(errs...)
}

// reasonList is every known reason, comma-separated.
func reasonList() string {
	names := make([]string, len(push.Reasons))
	for i, r := range push.Reasons {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// Subjects are the stream subject filters for f under prefix: without a
// session, one for the sessions' letters and one for the groups'
// (dlq.<prefix>.<reason>.group.<group>.<priority>, a token longer).
func (f Filter) Subjects(prefix string) []string {
	or := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	subject := func(session string) string {
		return protocol.DeadLetterPrefix(prefix) + "." + or(f.Reason) + "." + session + "." + or(f.Priority)
	}
	if f.Session != "" {
		return []string{subject(f.Session)}
	}
	return []string{subject("*"), subject(protocol.GroupLetterSession("*"))}
}

// Entry is one stored dead letter.
type Entry struct {
	Seq     uint64
	Subject string
	Time    time.Time // when it was stored
	Header  nats.Header
	Data    []byte
}

// Reason, Session and Priority are the tokens of the dead letter's stream
// subject, dlq.<prefix>.<reason>.<session>.<priority> (the prefix is one
// token) — what filters select by and replay trusts — never its
// Push-Reason, Push-Session and Push-Priority headers, which whoever stored
// it may have forged. A group's letter,
// dlq.<prefix>.offline.group.<group>.<priority>, has session
// group.<group>; a subject of any other shape gives "" for all three.
func (e Entry) Reason() push.Reason { r, _, _ := protocol.ParseDeadLetterSubject(e.Subject); return r }
func (e Entry) Session() string     { _, s, _ := protocol.ParseDeadLetterSubject(e.Subject); return s }
func (e Entry) Priority() string    { _, _, p := protocol.ParseDeadLetterSubject(e.Subject); return p }

// ID is the push id.
func (e Entry) ID() string { return e.Header.Get(protocol.HeaderID) }

// Store reads, replays and removes dead letters.
type Store struct {
	prefix string
	stream jetstream.Stream
}

// Open finds the dead-letter stream for pushes under prefix.
func Open(ctx context.Context, js jetstream.JetStream, prefix string) (*Store, error) {
	s, err := js.Stream(ctx, protocol.DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", protocol.DeadLetterStream, err)
	}
	return &Store{prefix: prefix, stream: s}, nil
}

// Each calls fn for every dead letter f selects, oldest first, until fn
// returns an error (which Each returns) or the selection ends. Dead letters
// stored while it runs are not included.
func (s *Store) Each(ctx context.Context, f Filter, fn func(Entry) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: f.Subjects(s.prefix), MaxResetAttempts: maxResets}
	if !f.Since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &f.Since
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", protocol.DeadLetterStream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", protocol.DeadLetterStream, err)
	}
	left := int(info.NumPending)
	if f.Limit > 0 {
		left = min(left, f.Limit)
	}
	for left > 0 {
		n, err := fetch(ctx, cons, min(left, 256), fn)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // what was pending was removed meanwhile
		}
		left -= n
	}
	return nil
}

// fetch passes the next batch of up to n dead letters to fn and says how
// many it took. In a cluster an ordered consumer is made anew for each
// fetch, on the server of the stream's leader, and the other servers learn
// of it a moment later: a fetch through one of them that finds "no
// responders" before any dead letter came is tried again, for up to
// noRespondersFor.
func fetch(ctx context.Context, cons jetstream.Consumer, n int, fn func(Entry) error) (int, error) {
	deadline := time.Now().Add(noRespondersFor)
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		got, err := fetchOnce(cons, n, fn)
		if got > 0 || !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			return got, err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return 0, fmt.Errorf("read %s: %w", protocol.DeadLetterStream, context.Cause(ctx))
		}
	}
}

// maxResets bounds how often a read makes its consumer anew after losing
// it (a server of the cluster gone, its leader moving): nats.go's default
// is without end, and its fetch does not heed the context, so a read
// could hang for good; past the bound it fails, saying so.
const maxResets = 5

// noRespondersFor bounds how long fetch tries again: a consumer's interest
// crosses a route in well under a second.
const noRespondersFor = 5 * time.Second

func fetchOnce(cons jetstream.Consumer, n int, fn func(Entry) error) (int, error) {
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", protocol.DeadLetterStream, err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		if err := fn(entryOf(m)); err != nil {
			return got, err
		}
	}
	if err := batch.Error(); err != nil {
		return got, fmt.Errorf("read %s: %w", protocol.DeadLetterStream, err)
	}
	return got, nil
}

func entryOf(m jetstream.Msg) Entry {
	e := Entry{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
	if md, err := m.Metadata(); err == nil {
		e.Seq, e.Time = md.Sequence.Stream, md.Timestamp
	}
	return e
}

// List returns the dead letters f selects, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Entry, error) {
	var out []Entry
	err := s.Each(ctx, f, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Get returns the dead letter with stream sequence seq; an error matching
// ErrNotFound if the stream holds none.
func (s *Store) Get(ctx context.Context, seq uint64) (Entry, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return Entry{Seq: m.Sequence, Subject: m.Subject, Time: m.Time, Header: m.Header, Data: m.Data}, nil
}

// ErrNotFound: no dead letter has that id or sequence.
var ErrNotFound = errors.New("no such dead letter")

// Find returns the dead letters of the push with id (more than one if it
// died again after a replay), oldest first.
func (s *Store) Find(ctx context.Context, id string) ([]Entry, error) {
	var out []Entry
	err := s.Each(ctx, Filter{}, func(e Entry) error {
		if e.ID() == id {
			out = append(out, e)
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("push %s: %w", id, ErrNotFound)
	}
	return out, err
}

// Delete removes one dead letter.
func (s *Store) Delete(ctx context.Context, seq uint64) error {
	if err := s.stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}

// Purge removes the dead letters f selects and returns how many.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.Since.IsZero() && f.Limit == 0 { // the server does it in one go
		before, err := s.count(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, subject := range f.Subjects(s.prefix) {
			if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
				return 0, fmt.Errorf("purge %s: %w", subject, err)
			}
		}
		return before, nil
	}
	n := 0
	err := s.Each(ctx, f, func(e Entry) error {
		if err := s.Delete(ctx, e.Seq); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// count is how many dead letters match f's subjects.
func (s *Store) count(ctx context.Context, f Filter) (int, error) {
	n := 0
	for _, subject := range f.Subjects(s.prefix) {
		info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", protocol.DeadLetterStream, err)
		}
		for _, c := range info.State.Subjects {
			n += int(c)
		}
	}
	return n, nil
}

// Stats describes the stream.
type Stats struct {
	Messages  uint64
	Bytes     uint64
	Oldest    time.Time // zero when empty
	Newest    time.Time
	ByReason  map[string]uint64
	BySession map[string]uint64
	Limits    StreamConfig
	FirstSeq  uint64
	LastSeq   uint64
	Subjects  int // distinct reason, session and priority triples
}

// Stats counts dead letters by reason and by session and reports the
// stream's use against its limits.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(protocol.DeadLetterPrefix(s.prefix)+".>"))
	if err != nil {
		return Stats{}, fmt.Errorf("stream %s: %w", protocol.DeadLetterStream, err)
	}
	st := Stats{
		Messages: info.State.Msgs, Bytes: info.State.Bytes,
		ByReason: map[string]uint64{}, BySession: map[string]uint64{},
		Limits: StreamConfig{
			MaxAge: info.Config.MaxAge, MaxBytes: info.Config.MaxBytes,
			MaxMsgsPerSubject: info.Config.MaxMsgsPerSubject, Replicas: info.Config.Replicas,
		},
		FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Subjects: len(info.State.Subjects),
	}
	if info.State.Msgs > 0 {
		st.Oldest, st.Newest = info.State.FirstTime, info.State.LastTime
	}
	for subject, n := range info.State.Subjects {
		reason, session, _, ok := ParseSubject(s.prefix, subject)
		if !ok {
			continue
		}
		st.ByReason[reason] += n
		st.BySession[session] += n
	}
	return st, nil
}

// ParseSubject splits a dead letter's subject.
func ParseSubject(prefix, subject string) (reason, session, priority string, ok bool) {
	rest, ok := strings.CutPrefix(subject, protocol.DeadLetterPrefix(prefix)+".")
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
