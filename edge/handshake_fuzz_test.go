package edge

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader hands out its bytes n at a time, as a slow socket would.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

// blankLineEnd is the obvious reading of where a request's headers end:
// just past the first "\n\n" or "\n\r\n"; -1 if nowhere.
func blankLineEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if bytes.HasPrefix(b[i+1:], []byte("\n")) {
			return i + 2
		}
		if bytes.HasPrefix(b[i+1:], []byte("\r\n")) {
			return i + 3
		}
	}
	return -1
}

// However the bytes arrive, readUpgradeRequest ends the request where the
// first blank line does, keeps every byte after it, and never reads more
// than the limit.
func FuzzReadUpgradeRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"), uint8(3), uint16(64))
	f.Add([]byte("GET / HTTP/1.1\nHost: a\n\n"), uint8(1), uint16(20))
	f.Add([]byte("GET /aaaaaaaaaaaaaaaaaaaaaaaa"), uint8(7), uint16(16))
	f.Add([]byte("\r\n\r\n"), uint8(2), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, limit uint16) {
		n, lim := int(chunk)%16+1, int(limit)%2048+1
		src := &chunkReader{b: data, n: n}
		req, rest, err := readUpgradeRequest(src, lim)
		consumed := len(data) - len(src.b)
		if consumed > lim {
			t.Fatalf("read %d bytes; the limit is %d", consumed, lim)
		}
		end := blankLineEnd(data[:consumed])
		switch {
		case err == nil:
			if end != len(req) || !bytes.Equal(req, data[:end]) || !bytes.Equal(rest, data[end:consumed]) {
				t.Fatalf("request %q, rest %q; want the request through the first blank line of %q", req, rest, data[:consumed])
			}
		case errors.Is(err, errRequestTooLarge):
			if end >= 0 || consumed != lim {
				t.Fatalf("too large after %d bytes (limit %d), blank line at %d", consumed, lim, end)
			}
		case errors.Is(err, io.ErrUnexpectedEOF):
			if end >= 0 || consumed != len(data) {
				t.Fatalf("unexpected EOF after %d of %d bytes, blank line at %d", consumed, len(data), end)
			}
		default:
			t.Fatalf("error %v", err)
		}
	})
}

// canonicalOrigin never panics, and what it returns is its own canonical
// form.
func FuzzCanonicalOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example", "HTTP://A.example:80", "null", "https://a.example/", "http://[::1]:443", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := canonicalOrigin(s)
		if !ok {
			return
		}
		if again, ok := canonicalOrigin(c); !ok || again != c {
			t.Fatalf("canonicalOrigin(%q) = %q, then %q, %v", s, c, again, ok)
		}
	})
}
