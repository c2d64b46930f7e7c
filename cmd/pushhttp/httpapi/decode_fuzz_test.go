package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// natsKeys are the only NATS headers a request's headers may set.
var natsKeys = []string{protocol.HeaderID, protocol.HeaderExpires, protocol.HeaderContentType, protocol.HeaderTraceparent, protocol.HeaderTracestate}

// checkBuilt holds the headers opts build to the rules: only natsKeys,
// each once, each value one checkValue takes (no line break could start a
// header of its own on NATS).
func checkBuilt(t *testing.T, opts []producer.Option) nats.Header {
	t.Helper()
	m := &nats.Msg{Header: nats.Header{}}
	if err := tryOptionsOn(m, opts); err != nil {
		t.Fatalf("options refused after they were taken: %v", err)
	}
	for k, vs := range m.Header {
		if !slices.Contains(natsKeys, k) || len(vs) != 1 || checkValue(vs[0]) != nil {
			t.Fatalf("built header %s: %q", k, vs)
		}
	}
	return m.Header
}

// edgeOnly are headers no push of a batch may carry: NATS's, and those
// the edge or the dead-letter stream set.
var edgeOnly = []string{protocol.HeaderReply, protocol.HeaderSession, protocol.HeaderGroup, protocol.HeaderReason, protocol.HeaderDeadID,
	protocol.HeaderControl, protocol.HeaderSentAt}

// FuzzDecodeBatch: a batch body is refused, or every push of it names a
// valid session and priority, has a payload within the limit and headers
// NATS can carry and a producer may set (no Nats-*, none of the edge's,
// one line each), and encoded again (payload in base64, the headers as
// built) decodes to the same pushes.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`[{"session":"alice","payload":"hi"}]`,
		`[{"session":"alice","priority":"low","payload_base64":"AAEC","headers":{"Push-Id":"p-1","Content-Type":"x/y","traceparent":"00-a-b-01"}},{"session":"bob"}]`,
		`[{"session":"a.b"}]`, `[{"session":"alice","headers":{"Push-Reply":"x"}}]`, `[{"session":"alice","headers":{"Push-Id":"a\r\nB: c"}}]`,
		`[{"session":"alice","payload":{"a":[1,2]},"headers":{"Push-Ack":"written","Push-Expires":"2030-01-02T03:04:05Z"}}]`, `[]`, `{}`, `[{"session":"all"}] x`} {
		f.Add([]byte(s))
	}
	lim := BatchLimits{MaxItems: 8, MaxPayload: 64}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := DecodeBatch(body, lim)
		if err != nil {
			return
		}
		if len(msgs) == 0 || len(msgs) > lim.MaxItems {
			t.Fatalf("%d pushes taken", len(msgs))
		}
		var again []producer.JSONPush
		for _, m := range msgs {
			if push.CheckSession(m.Session) != nil || !m.Priority.Valid() || len(m.Payload) > lim.MaxPayload {
				t.Fatalf("taken: %+v", m)
			}
			h := nats.Header{}
			if err := tryOptionsOn(&nats.Msg{Header: h}, m.Options); err != nil {
				t.Fatalf("options refused after they were taken: %v", err)
			}
			j := producer.JSONPush{Session: m.Session, Priority: m.Priority.String(), PayloadBase64: m.Payload, Headers: map[string]string{}}
			for k, vs := range h {
				if strings.HasPrefix(strings.ToLower(k), "nats-") || slices.Contains(edgeOnly, k) || len(vs) != 1 || strings.ContainsAny(vs[0], "\r\n") {
					t.Fatalf("built header %s: %q", k, vs)
				}
				j.Headers[k] = vs[0]
			}
			again = append(again, j)
		}
		b, _ := json.Marshal(again)
		msgs2, err := DecodeBatch(b, lim)
		if err != nil || len(msgs2) != len(msgs) {
			t.Fatalf("encoded again, %s: %v", b, err)
		}
		for i := range msgs {
			h1, h2 := nats.Header{}, nats.Header{}
			_ = tryOptionsOn(&nats.Msg{Header: h1}, msgs[i].Options)
			_ = tryOptionsOn(&nats.Msg{Header: h2}, msgs2[i].Options)
			if msgs[i].Session != msgs2[i].Session || msgs[i].Priority != msgs2[i].Priority || !bytes.Equal(msgs[i].Payload, msgs2[i].Payload) || !sameHeaders(h1, h2) {
				t.Fatalf("push %d: %+v %v, then %+v %v", i, msgs[i], h1, msgs2[i], h2)
			}
		}
	})
}

func sameHeaders(a, b nats.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !slices.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}

// FuzzHeaderOptions: the headers of a request are refused, or build only
// the push headers of natsKeys, by the rules, each saying what the HTTP
// header said (Push-Expires as the same instant); an unknown Push-* header
// is never taken.
func FuzzHeaderOptions(f *testing.F) {
	for _, c := range [][4]string{{"Push-Id", "p-1", "Content-Type", "text/plain"}, {"traceparent", "00-x-y-01", "tracestate", "a=b"},
		{"Push-Expires", "2030-01-02T03:04:05.5+02:00", "Push-Expires-In", "5s"}, {"push-reply", "victim", "User-Agent", "curl"},
		{"Push-Id", "a\nb", "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}, {"Nats-Msg-Id", "x", "Push-Expires-In", "9999999h"}} {
		f.Add(c[0], c[1], c[2], c[3])
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{}
		h.Add(k1, v1)
		h.Add(k2, v2)
		opts, err := headerOptions(h)
		if err != nil {
			return
		}
		built := checkBuilt(t, opts)
		for k, vs := range h {
			if !slices.Contains(pushHeaders, k) {
				if len(k) >= 5 && strings.EqualFold(k[:5], "Push-") {
					t.Fatalf("header %s taken", k)
				}
				continue
			}
			if len(vs) != 1 {
				t.Fatalf("header %s taken %d times", k, len(vs))
			}
			checkMapped(t, k, vs[0], built)
		}
	})
}

// checkMapped holds the NATS header that HTTP header k (value v) built.
func checkMapped(t *testing.T, k, v string, built nats.Header) {
	t.Helper()
	switch k {
	case HeaderExpires:
		want, _ := time.Parse(time.RFC3339Nano, v)
		got, err := push.ParseTime(built.Get(protocol.HeaderExpires))
		if err != nil || !got.Equal(want) {
			t.Fatalf("Push-Expires %q built %q", v, built.Get(protocol.HeaderExpires))
		}
	case HeaderExpiresIn:
		if built.Get(protocol.HeaderExpires) == "" {
			t.Fatalf("Push-Expires-In %q built no Push-Expires", v)
		}
	case HeaderType:
		if got := built.Get(protocol.HeaderContentType); got != v && (!isFormType(v) || got != "") {
			t.Fatalf("Content-Type %q built %q", v, got)
		}
	default:
		if got := built.Get(natsNames[k]); got != v {
			t.Fatalf("%s %q built %s %q", k, v, natsNames[k], got)
		}
	}
}

// FuzzParseParams: a query is refused, or names an ack mode a push takes
// (enqueued only for a group) and a timeout within the bound.
func FuzzParseParams(f *testing.F) {
	for _, q := range []string{"", "ack=written&timeout=2s", "ack=received", "timeout=3m", "ack=none", "timout=1s", "ack=written&ack=received", "timeout=-1s", "%zz"} {
		f.Add(q, false)
		f.Add(q, true)
	}
	f.Fuzz(func(t *testing.T, raw string, group bool) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseParams(q, group, 10*time.Second, 2*time.Minute)
		if err != nil {
			return
		}
		modes := []string{protocol.AckEnqueued, protocol.AckWritten, protocol.AckReceived}
		if group {
			modes = modes[:1]
		}
		if !slices.Contains(modes, p.ack) || p.timeout <= 0 || p.timeout > 2*time.Minute {
			t.Fatalf("%q: taken as %+v", raw, p)
		}
		if err := producer.WithAck(p.ack)(&nats.Msg{Header: nats.Header{}}); err != nil {
			t.Fatalf("%q: ack %s refused by the producer: %v", raw, p.ack, err)
		}
	})
}
