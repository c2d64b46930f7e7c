package bus

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

func TestDecodeReply(t *testing.T) {
	h := func(kv ...string) nats.Header {
		h := nats.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, c := range []struct {
		name        string
		m           *nats.Msg
		frame, more bool
		code        wire.ErrorCode
		message     string
	}{
		{"plain reply", &nats.Msg{Data: []byte("x")}, true, false, "", ""},
		{"stream", &nats.Msg{Header: h(protocol.HeaderStream, "more"), Data: []byte("x")}, true, true, "", ""},
		{"empty more", &nats.Msg{Header: h(protocol.HeaderStream, "more")}, true, true, "", ""},
		{"end marker", &nats.Msg{Header: h(protocol.HeaderStream, "end")}, false, false, "", ""},
		{"end with a body", &nats.Msg{Header: h(protocol.HeaderStream, "end"), Data: []byte("x")}, true, false, "", ""},
		{"unknown stream value ends", &nats.Msg{Header: h(protocol.HeaderStream, "MORE"), Data: []byte("x")}, true, false, "", ""},
		{"no responders", &nats.Msg{Header: h("Status", "503")}, false, false, wire.CodeNoHandler, "no backend serves this method: nothing answers on req.push.m"},
		{"error", &nats.Msg{Header: h(protocol.HeaderError, "not_found"), Data: []byte("gone")}, false, false, "not_found", "gone"},
		{"error wins over more", &nats.Msg{Header: h(protocol.HeaderError, "e", protocol.HeaderStream, "more")}, false, false, "e", ""},
		{"bad code", &nats.Msg{Header: h(protocol.HeaderError, "a b"), Data: []byte("m")}, false, false, wire.CodeBackendError, `"a b": m`},
	} {
		r := decodeReply(c.m, "req.push.m")
		var code wire.ErrorCode
		message := ""
		if r.err != nil {
			code, message = r.err.Code, r.err.Message
		}
		if (r.frame != nil) != c.frame || r.more != c.more || code != c.code || message != c.message {
			t.Errorf("%s: frame %v more %v error %q %q", c.name, r.frame != nil, r.more, code, message)
		}
	}
}

// FuzzDecodeReply: whatever a backend replies, the client gets its bytes
// as a frame or an error frame with a valid code, and never both.
//
// Status and Push-Stream are compared with short constants, a code is valid
// up to 128 bytes and quoted whole into the message past that, and the body
// and content type are only copied. Longer values reach no new code, yet
// the fuzzer rewarded them (a loop that runs more often counts as new
// coverage) and then spent tens of seconds minimizing them, quadratic in
// their length, at 0 execs/sec; so the target cuts each value past the
// length that matters. Headers are set in a fixed order.
func FuzzDecodeReply(f *testing.F) {
	f.Add("", "", "more", "text/plain", []byte("x"))
	f.Add("503", "", "", "", []byte(nil))
	f.Add("", "bad code", "end", "", []byte("m"))
	f.Add("", strings.Repeat("c", 129), "", "", []byte("too long a code"))
	f.Fuzz(func(t *testing.T, status, code, stream, ct string, data []byte) {
		const short, long = 16, 130
		status, stream, ct = status[:min(len(status), short)], stream[:min(len(stream), short)], ct[:min(len(ct), short)]
		code, data = code[:min(len(code), long)], data[:min(len(data), short)]
		h := nats.Header{}
		for _, kv := range [...][2]string{{"Status", status}, {protocol.HeaderError, code},
			{protocol.HeaderStream, stream}, {protocol.HeaderContentType, ct}} {
			if kv[1] != "" {
				h.Set(kv[0], kv[1])
			}
		}
		r := decodeReply(&nats.Msg{Header: h, Data: data}, "req.push.m")
		switch {
		case r.err != nil:
			if r.frame != nil || r.more || !push.ValidName(string(r.err.Code)) || (r.outcome != OutcomeError && r.outcome != OutcomeNoHandler) {
				t.Fatalf("error %q with frame %v, more %v", r.err.Code, r.frame != nil, r.more)
			}
		case r.frame != nil:
			if !bytes.Equal(r.frame.Payload, data) || r.frame.ContentType != h.Get(protocol.HeaderContentType) {
				t.Fatalf("frame %q [%s] from %q", r.frame.Payload, r.frame.ContentType, data)
			}
		case len(data) > 0:
			t.Fatalf("%d bytes dropped", len(data))
		}
	})
}
