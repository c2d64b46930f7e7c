package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// built is the NATS headers opts set.
func built(t *testing.T, opts []producer.Option) nats.Header {
	t.Helper()
	m := &nats.Msg{Header: nats.Header{}}
	if err := tryOptionsOn(m, opts); err != nil {
		t.Fatalf("options refused after they were checked: %v", err)
	}
	return m.Header
}

func TestHeaderOptions(t *testing.T) {
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name string
		in   http.Header
		want map[string]string // the NATS headers, exactly
		err  string
	}{
		{"none", http.Header{"User-Agent": {"curl/8"}, "Accept": {"*/*"}}, map[string]string{}, ""},
		{"each", http.Header{HeaderID: {"p-1"}, HeaderExpires: {"2030-01-02T03:04:05Z"}, HeaderType: {"text/plain"},
			HeaderTrace: {tp}, HeaderState: {"a=b"}},
			map[string]string{"Push-Id": "p-1", "Push-Expires": "2030-01-02T03:04:05Z", "Content-Type": "text/plain", "traceparent": tp, "tracestate": "a=b"}, ""},
		{"curl's form type is none", http.Header{HeaderType: {"application/x-www-form-urlencoded; charset=utf-8"}}, map[string]string{}, ""},
		{"unknown Push- header", http.Header{"Push-Reply": {"victim"}}, nil, "header Push-Reply: not one pushhttp maps"},
		{"a typo", http.Header{"Push-Expire": {"2030-01-02T03:04:05Z"}}, nil, "header Push-Expire"},
		{"a Push- key not canonical", http.Header{"push- ": {"x"}}, nil, "header push- "},
		{"twice", http.Header{HeaderID: {"a", "b"}}, nil, "given 2 times"},
		{"bad time", http.Header{HeaderExpires: {"tomorrow"}}, nil, "want an RFC 3339 time"},
		{"bad duration", http.Header{HeaderExpiresIn: {"-5s"}}, nil, "want a positive Go duration"},
		{"both expiries", http.Header{HeaderExpires: {"2030-01-02T03:04:05Z"}, HeaderExpiresIn: {"5s"}}, nil, "give one"},
		{"long id", http.Header{HeaderID: {strings.Repeat("i", 256)}}, nil, "Push-Id of 256 bytes"},
		{"control character", http.Header{HeaderID: {"a\r\nPush-Reply: victim"}}, nil, "control character"},
		{"not UTF-8", http.Header{HeaderID: {"\xff"}}, nil, "not UTF-8"},
		{"empty", http.Header{HeaderType: {""}}, nil, "empty"},
		{"long tracestate", http.Header{HeaderState: {strings.Repeat("a", 513)}}, nil, "at most 512"},
	} {
		opts, err := headerOptions(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v; want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		h := built(t, opts)
		if len(h) != len(c.want) {
			t.Errorf("%s: headers %v; want %v", c.name, h, c.want)
		}
		for k, v := range c.want {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %s = %q; want %q", c.name, k, got, v)
			}
		}
	}
	opts, err := headerOptions(http.Header{HeaderExpiresIn: {"90s"}})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := push.ParseTime(built(t, opts).Get(protocol.HeaderExpires))
	if d := time.Until(exp); err != nil || d <= 0 || d > 90*time.Second {
		t.Fatalf("Push-Expires-In 90s: expires in %v (%v)", d, err)
	}
}

func TestParseParams(t *testing.T) {
	for _, c := range []struct {
		query   string
		group   bool
		ack     string
		timeout time.Duration
		err     string
	}{
		{"", false, "enqueued", 10 * time.Second, ""},
		{"ack=written&timeout=2s", false, "written", 2 * time.Second, ""},
		{"ack=received&timeout=2m", false, "received", 2 * time.Minute, ""},
		{"ack=enqueued", true, "enqueued", 10 * time.Second, ""},
		{"ack=written", true, "", 0, "per session only"},
		{"ack=none", false, "", 0, `ack="none": want enqueued, written or received`},
		{"timeout=3m", false, "", 0, "at most 2m0s"},
		{"timeout=0s", false, "", 0, "want a positive Go duration"},
		{"timeout=soon", false, "", 0, "want a positive Go duration"},
		{"timout=1s", false, "", 0, `query parameter "timout": only ack and timeout`},
		{"ack=written&ack=received", false, "", 0, "given 2 times"},
	} {
		q, _ := url.ParseQuery(c.query)
		p, err := parseParams(q, c.group, 10*time.Second, 2*time.Minute)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v; want %q", c.query, err, c.err)
		case c.err == "" && (err != nil || p.ack != c.ack || p.timeout != c.timeout):
			t.Errorf("%q: %+v, %v; want %s, %v", c.query, p, err, c.ack, c.timeout)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	lim := BatchLimits{MaxItems: 3, MaxPayload: 8}
	for _, c := range []struct {
		body  string
		n     int
		err   string
		index int // of the push at fault, when err names one
		large bool
	}{
		{`[{"session":"alice","payload":"hi"}]`, 1, "", 0, false},
		{` [ {"session":"alice","priority":"low","payload_base64":"AAEC","headers":{"Push-Id":"p-1","Content-Type":"x/y"}}, {"session":"bob"} ] `, 2, "", 0, false},
		{`[{"session":"alice","payload":{"n":4}}]`, 1, "", 0, false},
		{`{"session":"alice"}`, 0, "want a JSON array", -1, false},
		{`[]`, 0, "no pushes", -1, false},
		{`[{"session":"a"},{"session":"b"},{"session":"c"},{"session":"d"}]`, 0, "too many pushes: at most 3", -1, false},
		{`[{"session":"alice"},{"session":"a.b"}]`, 0, `push 1: session "a.b"`, 1, false},
		{`[{"session":"group"}]`, 0, "push 0: session", 0, false},
		{`[{"session":"alice","priority":"urgent"}]`, 0, `push 0: priority "urgent"`, 0, false},
		{`[{"session":"alice","payload":"x","payload_base64":"eA=="}]`, 0, "give one", 0, false},
		{`[{"session":"alice","payload_base64":"!!"}]`, 0, "base64", 0, false},
		{`[{"session":"alice","payload":"123456789"}]`, 0, "payload of 9 bytes: at most 8", 0, true},
		{`[{"session":"alice","headers":{"Push-Reply":"victim"}}]`, 0, "header Push-Reply: set by the edge", 0, false},
		{`[{"session":"alice","headers":{"Nats-Msg-Id":"x"}}]`, 0, "header Nats-Msg-Id", 0, false},
		{`[{"session":"alice","headers":{"Push-Id":"a\r\nPush-Reply: victim"}}]`, 0, "a value of one line", 0, false},
		{`[{"session":"alice","sesion":"bob"}]`, 0, `unknown field "sesion"`, 0, false},
		{`[{"session":"alice"}] []`, 0, "batch body: want a JSON array", -1, false},
		{`[{"session":"alice"}`, 0, "batch body", -1, false},
		{`[{"session":"alice"},`, 0, "batch body: want a JSON array", -1, false},
		{`[{"session":"alice"},{"session":"bob"},{"session":"a b"}]`, 0, `push 2: session "a b"`, 2, false},
	} {
		msgs, err := DecodeBatch([]byte(c.body), lim)
		if c.err == "" {
			if err != nil || len(msgs) != c.n {
				t.Errorf("%s: %d pushes, %v; want %d", c.body, len(msgs), err, c.n)
			}
			continue
		}
		var be *batchError
		isBatch := errors.As(err, &be)
		switch {
		case err == nil || !strings.Contains(err.Error(), c.err):
			t.Errorf("%s: %v; want %q", c.body, err, c.err)
		case c.index >= 0 && (!isBatch || be.index != c.index || be.large != c.large):
			t.Errorf("%s: %#v; want push %d at fault (large %v)", c.body, err, c.index, c.large)
		}
	}
	msgs, err := DecodeBatch([]byte(`[{"session":"alice","priority":"low","payload_base64":"AAEC","headers":{"Push-Id":"p-1"}}]`), lim)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; m.Session != "alice" || m.Priority != push.Low || !bytes.Equal(m.Payload, []byte{0, 1, 2}) || built(t, m.Options).Get("Push-Id") != "p-1" {
		t.Fatalf("decoded %+v", m)
	}
}

func TestDeadStatus(t *testing.T) {
	want := map[push.Reason]int{push.ReasonOffline: 404, push.ReasonQueueFull: 429, push.ReasonExpired: 410, push.ReasonInvalid: 422,
		push.ReasonClosed: 409, push.ReasonReplaced: 409, push.ReasonShutdown: 409, push.ReasonWriteError: 409, push.ReasonUnconfirmed: 409}
	for _, r := range push.Reasons {
		if got := deadStatus(r); got != want[r] {
			t.Errorf("deadStatus(%s) = %d; want %d", r, got, want[r])
		}
	}
	for status, code := range map[string]int{"enqueued": 202, "written": 200, "received": 200} {
		if got := ackStatus(protocol.Ack{Status: status}); got != code {
			t.Errorf("ackStatus(%s) = %d; want %d", status, got, code)
		}
	}
}
