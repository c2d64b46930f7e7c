package client

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzUpgradeRefused: whatever a server answers to an upgrade instead of
// 101, the error holds the status, a message of at most 512 bytes of
// valid UTF-8 and no negative Retry-After, and reading it ends with the
// bytes given.
func FuzzUpgradeRefused(f *testing.F) {
	f.Add(503, []byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 59\r\nConnection: close\r\n\r\nthe node holds as many sessions as it may; try again later\n"))
	f.Add(429, []byte("HTTP/1.1 429 Too Many Requests\r\nRetry-After: -5\r\nContent-Length: 99999999999\r\n\r\nshort"))
	f.Add(400, []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\n\xff\xfe\xfd"))
	f.Fuzz(func(t *testing.T, status int, resp []byte) {
		e := upgradeRefused(status, bytes.NewReader(resp))
		if e.Status != status || len(e.Message) > 512 || !utf8.ValidString(e.Message) || e.RetryAfter < 0 {
			t.Fatalf("%+v", e)
		}
		_ = e.Error()
	})
}
