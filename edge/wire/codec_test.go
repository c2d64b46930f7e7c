package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/push"
)

func sampleFrames() []Frame {
	return []Frame{
		{Type: TypePush, Priority: push.Low, ID: "p-1", ContentType: "application/json", Payload: []byte(`{"a":1}`)},
		{Type: TypePush, ID: strings.Repeat("i", MaxFieldLen), Payload: make([]byte, 70000)},
		{Type: TypePush, Priority: push.Low, WantsReceipt: true, ID: "p-2"},
		{Type: TypeRequest, ID: "r1", Name: "feed.page", Payload: []byte("page=2")},
		{Type: TypeResponse, ID: "r1"},
		{Type: TypeEnd, ID: "r1"},
		{Type: TypeError, ID: "r1", Name: "unknown_method", Payload: []byte("no handler")},
		{Type: TypeClose, Name: "shutdown"},
		{Type: TypePing, Payload: []byte{1, 2, 3}},
		{Type: TypeHello, ID: "s1", Payload: []byte("token")},
		{Type: TypeWelcome, ID: "s1", Name: "node-a"},
		{Type: TypeCancel, ID: "r1"},
		{Type: TypeReceipt, Payload: []byte{2, 'p', '1'}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		b, err := AppendFrame(nil, &f)
		if err != nil {
			t.Fatalf("encode %v: %v", f.Type, err)
		}
		if len(b) != f.Len() {
			t.Fatalf("%v: encoded %d bytes; Len says %d", f.Type, len(b), f.Len())
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %v: %v", f.Type, err)
		}
		assertFrame(t, got, f)
	}
}

func assertFrame(t *testing.T, got, want Frame) {
	t.Helper()
	if got.Type != want.Type || got.Priority != want.Priority || got.WantsReceipt != want.WantsReceipt || got.ID != want.ID ||
		got.Name != want.Name || got.ContentType != want.ContentType || !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("got %+v; want %+v", summary(got), summary(want))
	}
}

func summary(f Frame) Frame {
	if len(f.Payload) > 16 {
		f.Payload = f.Payload[:16]
	}
	return f
}

func TestValidateRejects(t *testing.T) {
	long := strings.Repeat("x", MaxFieldLen+1)
	for name, f := range map[string]Frame{
		"zero type":                {},
		"unknown type":             {Type: maxType + 1},
		"bad priority":             {Type: TypePush, Priority: 2},
		"long id":                  {Type: TypePush, ID: long},
		"long name":                {Type: TypeError, Name: long},
		"long content":             {Type: TypePush, ContentType: long},
		"receipt asked of a close": {Type: TypeClose, WantsReceipt: true},
	} {
		if _, err := AppendFrame(nil, &f); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v; want ErrMalformed", name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":                     {1, 1, 0, 0, 0},
		"version":                   {2, 1, 0, 0, 0, 0},
		"type zero":                 {1, 0, 0, 0, 0, 0},
		"type unknown":              {1, 99, 0, 0, 0, 0},
		"flags":                     {1, 1, 8, 0, 0, 0},
		"priority 2":                {1, 1, 2, 0, 0, 0},
		"receipt flag on a request": {1, 2, 4, 0, 0, 0},
		"id overrun":                {1, 1, 0, 9, 0, 0},
		"name overrun":              {1, 1, 0, 0, 9, 0},
		"ct overrun":                {1, 1, 0, 0, 0, 1},
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v; want ErrMalformed", name, err)
		}
	}
}

func TestTCPFraming(t *testing.T) {
	var stream []byte
	frames := sampleFrames()
	for _, f := range frames {
		var err error
		if stream, err = AppendTCP(stream, &f); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	var buf []byte
	for _, want := range frames {
		body, err := ReadTCP(r, buf, DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("read %v: %v", want.Type, err)
		}
		got, err := Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		assertFrame(t, got, want)
		buf = body
	}
	if _, err := ReadTCP(r, buf, DefaultMaxFrameSize); err != io.EOF {
		t.Fatalf("after last frame: got %v; want io.EOF", err)
	}
}

func TestTCPLimits(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"over max":      {[]byte{0, 0, 1, 1, 0}, ErrTooLarge},
		"below header":  {[]byte{0, 0, 0, 5, 1, 1, 0, 0, 0}, ErrMalformed},
		"cut in prefix": {[]byte{0, 0}, io.ErrUnexpectedEOF},
		"cut in body":   {[]byte{0, 0, 0, 9, 1, 1, 0}, io.ErrUnexpectedEOF},
	} {
		_, err := ReadTCP(bufio.NewReader(bytes.NewReader(tc.in)), nil, 256)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v; want %v", name, err, tc.want)
		}
	}
}

func TestWebSocketFraming(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	frames := sampleFrames()
	for _, fromClient := range []bool{false, true} {
		var stream []byte
		for i, f := range frames {
			if i == 2 { // control frames may come between messages
				stream = AppendWSControl(stream, WSPing, []byte("hi"), maskFor(fromClient, mask))
			}
			var err error
			if fromClient {
				stream, err = AppendWSMasked(stream, &f, mask)
			} else {
				stream, err = AppendWS(stream, &f)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var pings []string
		onControl := func(op byte, p []byte) error {
			pings = append(pings, string(p))
			return nil
		}
		r := bufio.NewReader(bytes.NewReader(stream))
		for _, want := range frames {
			body, err := ReadWS(r, nil, DefaultMaxFrameSize, fromClient, onControl)
			if err != nil {
				t.Fatalf("fromClient=%v read %v: %v", fromClient, want.Type, err)
			}
			got, err := Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			assertFrame(t, got, want)
		}
		if len(pings) != 1 || pings[0] != "hi" {
			t.Fatalf("control frames seen: %q; want one ping \"hi\"", pings)
		}
	}
}

func maskFor(masked bool, m [4]byte) *[4]byte {
	if masked {
		return &m
	}
	return nil
}

func TestWebSocketFragments(t *testing.T) {
	mask := [4]byte{9, 8, 7, 6}
	f := Frame{Type: TypeRequest, ID: "r", Name: "m", Payload: []byte("hello, fragmented world")}
	whole, _ := AppendFrame(nil, &f)
	var stream []byte
	stream = appendFragment(stream, WSBinary, false, whole[:5], mask)
	stream = AppendWSControl(stream, WSPing, []byte("p"), &mask)
	stream = appendFragment(stream, WSContinuation, false, whole[5:10], mask)
	stream = appendFragment(stream, WSContinuation, true, whole[10:], mask)
	got, err := ReadWS(bufio.NewReader(bytes.NewReader(stream)), nil, 1024, true, func(byte, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, whole) {
		t.Fatalf("reassembled %q; want %q", got, whole)
	}
}

// appendFragment appends one masked frame of a message; fin marks the last.
func appendFragment(dst []byte, op byte, fin bool, p []byte, mask [4]byte) []byte {
	start := len(dst)
	dst = AppendWSHeader(dst, op, len(p), &mask)
	if !fin {
		dst[start] &^= 0x80
	}
	body := len(dst)
	dst = append(dst, p...)
	ws.Cipher(dst[body:], mask, 0)
	return dst
}

func TestWebSocketRejects(t *testing.T) {
	mask := [4]byte{1, 1, 1, 1}
	big := AppendWSHeader(nil, WSBinary, 2000, &mask)
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"unmasked from client":   {AppendWSHeader(nil, WSBinary, 0, nil), ErrMalformed},
		"reserved bits":          {[]byte{0xC2, 0x80, 0, 0, 0, 0}, ErrMalformed},
		"reserved opcode":        {[]byte{0x83, 0x80, 0, 0, 0, 0}, ErrMalformed},
		"orphan continuation":    {AppendWSHeader(nil, WSContinuation, 0, &mask), ErrMalformed},
		"fragmented control":     {[]byte{0x09, 0x80, 0, 0, 0, 0}, ErrMalformed},
		"long control":           {AppendWSHeader(nil, WSPing, 126, &mask), ErrMalformed},
		"over max":               {big, ErrTooLarge},
		"cut header":             {[]byte{0x82}, io.ErrUnexpectedEOF},
		"cut payload":            {append(AppendWSHeader(nil, WSBinary, 10, &mask), 1, 2), io.ErrUnexpectedEOF},
		"close of one byte":      {appendFragment(nil, WSClose, true, []byte{3}, mask), ErrMalformed},
		"close code 1005":        {AppendWSClose(nil, 1005, "", &mask), ErrMalformed},
		"close code 2999":        {AppendWSClose(nil, 2999, "", &mask), ErrMalformed},
		"close reason not UTF-8": {AppendWSClose(nil, 1000, "\xff", &mask), ErrInvalidUTF8},
		"text not UTF-8":         {appendFragment(nil, WSText, true, []byte{0xCE}, mask), ErrInvalidUTF8},
		"fragmented text not UTF-8": {append(appendFragment(nil, WSText, false, []byte{'a'}, mask),
			appendFragment(nil, WSContinuation, true, []byte{0xFF}, mask)...), ErrInvalidUTF8},
	} {
		_, err := ReadWS(bufio.NewReader(bytes.NewReader(tc.in)), nil, 1024, true, func(byte, []byte) error { return nil })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v; want %v", name, err, tc.want)
		}
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	f := Frame{Type: TypePush, ID: "abc", ContentType: "text/plain", Payload: make([]byte, 128)}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		b, _ := AppendWS(buf[:0], &f)
		b, _ = AppendTCP(b, &f)
		_ = b
	})
	if allocs != 0 {
		t.Fatalf("encoding allocated %v times per frame; want 0", allocs)
	}
}
