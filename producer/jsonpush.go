package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// JSONPush is a push written as JSON, as scripts write them: one a line
// for `pushctl push --lines`, and the items of a batch over HTTP.
//
//	{"session":"alice","priority":"high","payload":"hello","headers":{"Content-Type":"text/plain"}}
//
// Priority may be left out (the reader's default). The payload is a JSON
// string, sent as its text, or any other JSON value, sent as written
// ({"a":1} sends {"a":1}); payload_base64 carries bytes that are not text
// instead. Headers are the push's headers by their names (docs/pushing.md):
// Push-Id, Push-Expires (RFC 3339), Push-Ack (enqueued, written or
// received), Content-Type, traceparent and others, checked as the options
// that set them are.
type JSONPush struct {
	Session       string            `json:"session"`
	Priority      string            `json:"priority,omitempty"`
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
}

// ParseJSONPush reads one push written as JSON into a Message, with prio
// when it names none. It refuses, saying why, what is not one JSON object
// of those fields (or not UTF-8, which JSON text is), a session that is not a session's name, a priority that
// is neither high nor low, a payload given twice, and headers that are not
// valid (a bad id, expiry or ack; a name a NATS header cannot have; one
// that only NATS or the edge sets).
func ParseJSONPush(line []byte, prio push.Priority) (Message, error) {
	if !utf8.Valid(line) {
		// encoding/json would take it, each bad byte turned into U+FFFD:
		// the push sent would not be the one written.
		return Message{}, fmt.Errorf("not a push as JSON: not UTF-8 (at byte %d); bytes that are not text go in payload_base64", invalidUTF8At(line))
	}
	var j JSONPush
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return Message{}, fmt.Errorf("not a push as JSON: %w", jsonError(err))
	}
	if len(bytes.TrimSpace(line[d.InputOffset():])) > 0 {
		return Message{}, errors.New("not a push as JSON: more after the object")
	}
	return j.Message(prio)
}

// invalidUTF8At is the offset of the first byte of b that is not UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%v (at byte %d)", err, se.Offset)
	}
	return err
}

// Message checks j and makes it a Message, with prio when j names none.
func (j JSONPush) Message(prio push.Priority) (Message, error) {
	if j.Session == "" {
		return Message{}, errors.New(`no "session"`)
	}
	if err := push.CheckSession(j.Session); err != nil {
		return Message{}, err
	}
	if j.Priority != "" {
		var err error
		if prio, err = push.ParsePriority(j.Priority); err != nil {
			return Message{}, err
		}
	}
	m := Message{Session: j.Session, Priority: prio}
	switch {
	case len(j.Payload) > 0 && j.PayloadBase64 != nil:
		return Message{}, errors.New(`"payload" and "payload_base64": give one`)
	case j.PayloadBase64 != nil:
		m.Payload = j.PayloadBase64
	case len(j.Payload) > 0 && j.Payload[0] == '"':
		var s string
		if err := json.Unmarshal(j.Payload, &s); err != nil {
			return Message{}, fmt.Errorf(`"payload": %w`, err)
		}
		m.Payload = []byte(s)
	case string(j.Payload) == "null":
	default:
		m.Payload = j.Payload
	}
	opts, err := HeaderOptions(j.Headers)
	if err != nil {
		return Message{}, err
	}
	m.Options = opts
	return m, nil
}

// HeaderOptions turns a push's headers, by name, into the options that set
// them, each checked: Push-Id (WithID), Push-Expires (an RFC 3339 time,
// WithExpiry), Push-Ack (WithAck), Content-Type (WithContentType), any
// other name as is (WithHeader) unless NATS or the edge set it (Nats-*,
// Push-Reply, Push-Group, the dead-letter headers). Names are matched
// exactly: NATS headers are case-sensitive.
func HeaderOptions(h map[string]string) ([]Option, error) {
	var opts []Option
	for k, v := range h {
		if err := checkHeader(k, v); err != nil {
			return nil, err
		}
		switch k {
		case protocol.HeaderID:
			if v == "" || len(v) > push.MaxFieldLen {
				return nil, fmt.Errorf("header %s of %d bytes: want 1 to %d", k, len(v), push.MaxFieldLen)
			}
			opts = append(opts, WithID(v))
		case protocol.HeaderExpires:
			t, err := push.ParseTime(v)
			if err != nil {
				return nil, fmt.Errorf("header %s: %w", k, err)
			}
			opts = append(opts, WithExpiry(t))
		case protocol.HeaderAck:
			switch v {
			case protocol.AckEnqueued, protocol.AckWritten, protocol.AckReceived:
			default:
				return nil, fmt.Errorf("header %s %q: want %s, %s or %s", k, v, protocol.AckEnqueued, protocol.AckWritten, protocol.AckReceived)
			}
			opts = append(opts, WithAck(v))
		case protocol.HeaderContentType:
			if len(v) > push.MaxFieldLen {
				return nil, fmt.Errorf("header %s of %d bytes: at most %d", k, len(v), push.MaxFieldLen)
			}
			opts = append(opts, WithContentType(v))
		default:
			opts = append(opts, WithHeader(k, v))
		}
	}
	return opts, nil
}

// notSettable are the headers a producer does not set: the edge and the
// dead-letter stream do.
var notSettable = map[string]bool{
	protocol.HeaderReply: true, protocol.HeaderGroup: true, protocol.HeaderSentAt: true, protocol.HeaderStatus: true,
	protocol.HeaderReason: true, protocol.HeaderSubject: true, protocol.HeaderSession: true, protocol.HeaderPriority: true,
	protocol.HeaderNode: true, protocol.HeaderDeadAt: true, protocol.HeaderReplayCount: true, protocol.HeaderDeadID: true,
	protocol.HeaderTrimmed: true, protocol.HeaderInvalid: true, protocol.HeaderControl: true, protocol.HeaderConn: true,
}

// checkHeader refuses a header NATS cannot carry or a producer does not
// set.
func checkHeader(k, v string) error {
	if k == "" {
		return errors.New("a header with no name")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("header name %q: printable ASCII without spaces or ':'", k)
		}
	}
	if strings.HasPrefix(strings.ToLower(k), "nats-") {
		return fmt.Errorf("header %s: NATS's own", k)
	}
	if notSettable[k] {
		return fmt.Errorf("header %s: set by the edge or the dead-letter stream, not by a producer", k)
	}
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("header %s: a value of one line", k)
	}
	return nil
}
