package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// The HTTP headers a push request may carry, each mapped to the push's
// own (DESIGN §3); keys as net/http canonicalises them.
const (
	HeaderID        = "Push-Id"         // Push-Id (producer.WithID)
	HeaderExpires   = "Push-Expires"    // Push-Expires, RFC 3339 (producer.WithExpiry)
	HeaderExpiresIn = "Push-Expires-In" // Push-Expires, as a Go duration from now
	HeaderType      = "Content-Type"    // Content-Type (producer.WithContentType)
	HeaderTrace     = "Traceparent"     // traceparent (producer.WithHeader)
	HeaderState     = "Tracestate"      // tracestate
)

// pushHeaders are the headers above, in the order they are read.
var pushHeaders = []string{HeaderID, HeaderExpires, HeaderExpiresIn, HeaderType, HeaderTrace, HeaderState}

// maxTraceLen bounds traceparent and tracestate (W3C: tracestate holds
// at most 32 members of 256 bytes; 512 is what its spec asks to keep).
const maxTraceLen = 512

// maxExpiresIn bounds Push-Expires-In.
const maxExpiresIn = 366 * 24 * time.Hour

// natsNames are the NATS headers the HTTP ones set (Push-Expires-In sets
// Push-Expires).
var natsNames = map[string]string{HeaderID: protocol.HeaderID, HeaderExpires: protocol.HeaderExpires, HeaderExpiresIn: protocol.HeaderExpires,
	HeaderType: protocol.HeaderContentType, HeaderTrace: protocol.HeaderTraceparent, HeaderState: protocol.HeaderTracestate}

// headerOptions maps the push headers of an HTTP request (canonical
// keys) to producer options: other Push-* keys are refused (a typo would
// be lost), the rest of its headers are not the push's, and a
// Content-Type of application/x-www-form-urlencoded (curl's -d default)
// is taken as none, since a push's body is never a form. The values are
// checked here for what HTTP lets through and NATS or a client would not
// take, then by producer.HeaderOptions as any JSON push's are, so a push
// the options build is never refused later.
func headerOptions(h http.Header) ([]producer.Option, error) {
	for k := range h {
		if !slices.Contains(pushHeaders, k) && len(k) >= 5 && strings.EqualFold(k[:5], "Push-") { // a key net/http did not canonicalise too
			return nil, fmt.Errorf("header %s: not one pushhttp maps (%s)", k, strings.Join(pushHeaders, ", "))
		}
	}
	if h.Get(HeaderExpires) != "" && h.Get(HeaderExpiresIn) != "" {
		return nil, fmt.Errorf("headers %s and %s: give one", HeaderExpires, HeaderExpiresIn)
	}
	named := map[string]string{}
	for _, k := range pushHeaders {
		vs := h[k]
		switch {
		case len(vs) == 0, k == HeaderType && len(vs) == 1 && isFormType(vs[0]):
			continue
		case len(vs) > 1:
			return nil, fmt.Errorf("header %s: given %d times", k, len(vs))
		}
		v, err := httpValue(k, vs[0])
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		named[natsNames[k]] = v
	}
	return producer.HeaderOptions(named)
}

// formType is what curl -d and --data-binary send as Content-Type unless
// told otherwise. A push's body is never a form: taken as no content type.
const formType = "application/x-www-form-urlencoded"

func isFormType(v string) bool {
	mt, _, _ := strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(mt), formType)
}

// httpValue checks the value of HTTP header k and gives the push
// header's: Push-Expires-In becomes the RFC 3339 time it says.
func httpValue(k, v string) (string, error) {
	if err := checkValue(v); err != nil {
		return "", err
	}
	switch k {
	case HeaderExpires:
		if _, err := push.ParseTime(v); err != nil {
			return "", fmt.Errorf("%q: want an RFC 3339 time (2026-01-02T15:04:05Z)", v)
		}
	case HeaderExpiresIn:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxExpiresIn {
			return "", fmt.Errorf("%q: want a positive Go duration (30s, 5m, 2h) of at most %v", v, maxExpiresIn)
		}
		return push.FormatTime(time.Now().Add(d)), nil
	case HeaderTrace, HeaderState:
		if len(v) > maxTraceLen {
			return "", fmt.Errorf("%d bytes: at most %d", len(v), maxTraceLen)
		}
	}
	return v, nil
}

// checkValue refuses a value no push header may carry: empty, not UTF-8,
// or holding a control character (a line break would start a header of
// its own on NATS).
func checkValue(v string) error {
	if v == "" {
		return errors.New("empty")
	}
	if !utf8.ValidString(v) {
		return errors.New("not UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("holds the control character %U", r)
		}
	}
	return nil
}

// tryOptionsOn applies opts to m, up to the first that refuses.
func tryOptionsOn(m *nats.Msg, opts []producer.Option) error {
	for _, o := range opts {
		if err := o(m); err != nil {
			return err
		}
	}
	return nil
}

// The query parameters of a push request.
const (
	queryAck     = "ack"
	queryTimeout = "timeout"
)

// params are what a push request's query says: the ack to wait for and
// how long.
type params struct {
	ack     string
	timeout time.Duration
}

// requestParams is parseParams of r's query, refused whole when a part
// of it does not parse (url.Values would leave that part out, and the
// push go with the defaults instead of what the caller asked).
func requestParams(r *http.Request, group bool, def, max time.Duration) (params, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{}, fmt.Errorf("query %q: %w", r.URL.RawQuery, err)
	}
	return parseParams(q, group, def, max)
}

// parseParams reads the query: ack (enqueued, written or received;
// group pushes and broadcasts enqueued only) and timeout (a Go duration,
// at most max; none: def). Any other parameter is refused.
func parseParams(q url.Values, group bool, def, max time.Duration) (params, error) {
	p := params{ack: protocol.AckEnqueued, timeout: def}
	for k, vs := range q {
		if k != queryAck && k != queryTimeout {
			return p, fmt.Errorf("query parameter %q: only %s and %s are taken", k, queryAck, queryTimeout)
		}
		if len(vs) != 1 {
			return p, fmt.Errorf("query parameter %s: given %d times", k, len(vs))
		}
	}
	if v, ok := q[queryAck]; ok {
		switch p.ack = v[0]; p.ack {
		case protocol.AckEnqueued:
		case protocol.AckWritten, protocol.AckReceived:
			if group {
				return p, fmt.Errorf("ack=%s: per session only; a group push or broadcast is acknowledged enqueued", p.ack)
			}
		default:
			return p, fmt.Errorf("ack=%q: want %s, %s or %s", p.ack, protocol.AckEnqueued, protocol.AckWritten, protocol.AckReceived)
		}
	}
	if v, ok := q[queryTimeout]; ok {
		d, err := time.ParseDuration(v[0])
		if err != nil || d <= 0 || d > max {
			return p, fmt.Errorf("timeout=%q: want a positive Go duration (500ms, 10s) of at most %v", v[0], max)
		}
		p.timeout = d
	}
	return p, nil
}

// BatchLimits bound a batch body.
type BatchLimits struct {
	MaxItems   int // pushes in one batch
	MaxPayload int // bytes of one push's payload, decoded
}

// batchError is a batch refused for one of its pushes: which, and why.
type batchError struct {
	index int
	err   error
	large bool // over a size limit: 413
}

func (e *batchError) Error() string { return fmt.Sprintf("push %d: %v", e.index, e.err) }
func (e *batchError) Unwrap() error { return e.err }

// errTooMany refuses a batch of more than MaxItems.
var errTooMany = errors.New("too many pushes")

// DecodeBatch reads a batch body: a JSON array of 1 to lim.MaxItems
// pushes, each a JSON push as producer.ParseJSONPush reads one (pushctl
// push --lines' format: session, priority — high when left out —,
// payload or payload_base64, headers by their NATS names), its payload
// at most lim.MaxPayload bytes, and nothing after the array. The whole
// batch is refused when one push is not valid (an error naming its
// index): nothing of it is sent then.
func DecodeBatch(body []byte, lim BatchLimits) ([]producer.Message, error) {
	// The whole body first: what is not one JSON array is refused alike
	// whichever Go decodes it (a streaming decoder says an array cut short
	// differently from one Go to the next).
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("batch body: want a JSON array of pushes: %w", err)
	}
	switch {
	case len(raws) == 0:
		return nil, errors.New("batch body: no pushes")
	case len(raws) > lim.MaxItems:
		return nil, fmt.Errorf("batch body: %w: at most %d", errTooMany, lim.MaxItems)
	}
	msgs := make([]producer.Message, 0, len(raws))
	for i, raw := range raws {
		m, err := producer.ParseJSONPush(raw, push.High)
		switch {
		case err != nil:
			return nil, &batchError{index: i, err: err}
		case len(m.Payload) > lim.MaxPayload:
			return nil, &batchError{index: i, err: fmt.Errorf("payload of %d bytes: at most %d", len(m.Payload), lim.MaxPayload), large: true}
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// readBody reads a request body of at most max bytes; a longer one is
// refused (413) without reading past the limit.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *apiError) {
	if r.ContentLength > max {
		return nil, tooLarge("body of %d bytes: at most %d", r.ContentLength, max)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge("body over %d bytes", max)
	case err != nil:
		return nil, badRequest("reading the body: %v", err)
	}
	return b, nil
}
