package producer

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// FuzzParseJSONPush: any line is refused with a reason, or is a push to a
// valid session with a valid priority whose options all apply, and build
// headers NATS can carry, none that only NATS or the edge sets, each as the
// line gave it.
func FuzzParseJSONPush(f *testing.F) {
	for _, s := range []string{
		`{"session":"alice","priority":"high","payload":"hello","headers":{"Push-Id":"p1","Content-Type":"text/plain"}}`,
		`{"session":"bob","payload":{"n":[1,2]},"headers":{"Push-Ack":"written","Push-Expires":"2030-01-01T00:00:00Z"}}`,
		`{"session":"c","payload_base64":"AAEC"}`, `{"session":"a.b"}`, `{"session":"all","payload":"x"}`,
		`{"session":"x","headers":{"Push-Reply":"victim"}}`, `{"session":"x","headers":{"nats-msg-id":"x"}}`,
		`{"session":"x","headers":{"a b":"c"}}`, `{"session":"x","headers":{"k":"v\r\nX: y"}}`, `{"session":"x"} {}`,
		`{"session":"x","payload":null}`, `[1]`, ``, `{"session":"x","priority":"HIGH"}`, "{\"session\":\"x\",\"payload\":\"caf\xe9\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseJSONPush(line, push.Low)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refused without a reason")
			}
			return
		}
		if !utf8.Valid(line) {
			t.Fatalf("accepted a line that is not UTF-8: %q", line)
		}
		if push.CheckSession(m.Session) != nil || !m.Priority.Valid() {
			t.Fatalf("accepted session %q, priority %v", m.Session, m.Priority)
		}
		msg := &nats.Msg{Header: nats.Header{}}
		for _, o := range m.Options {
			if err := o(msg); err != nil {
				t.Fatalf("an option of an accepted push fails: %v", err)
			}
		}
		for k, vs := range msg.Header {
			if checkHeader(k, vs[0]) != nil || strings.HasPrefix(strings.ToLower(k), "nats-") || k == protocol.HeaderReply {
				t.Fatalf("accepted header %q: %q", k, vs)
			}
		}
		var j JSONPush
		if err := json.Unmarshal(line, &j); err != nil {
			t.Fatalf("accepted, yet not JSON: %v", err)
		}
		for k, v := range j.Headers {
			got := msg.Header.Get(k)
			if k == protocol.HeaderExpires {
				want, _ := push.ParseTime(v)
				at, err := push.ParseTime(got)
				if err != nil || !at.Equal(want) {
					t.Fatalf("%s %q became %q", k, v, got)
				}
			} else if got != v {
				t.Fatalf("header %s %q became %q", k, v, got)
			}
		}
		if len(msg.Header) != len(j.Headers) {
			t.Fatalf("headers %v from %v", msg.Header, j.Headers)
		}
	})
}
