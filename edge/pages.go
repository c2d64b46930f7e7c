package edge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// PageMux answers plain HTTP GET requests on the WebSocket listeners (see
// Options.Pages). *http.ServeMux is one.
type PageMux interface {
	// Handler returns the handler for r and the pattern it was registered
	// with; an empty pattern means no page: the request is refused as any
	// request that is not a WebSocket upgrade.
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// errPageServed: the request on the WebSocket listener was a page's, and
// was answered; the socket is done with, and no client was refused.
var errPageServed = errors.New("page served")

// servePage answers raw, a request read off a WebSocket listener, with
// hp.pages if it is a plain GET (no Upgrade header) that one of the pages
// matches, in development mode with a loopback Host. The answer is an
// HTTP/1.1 response with Connection: close, and the socket is closed
// after it. It reports whether it answered; a request it did not answer
// goes on to the upgrader, which refuses it as before.
func servePage(nc net.Conn, raw []byte, hp *handshakePolicy) bool {
	if hp.pages == nil {
		return false
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil || r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" {
		return false
	}
	if hp.loopbackHosts && !loopbackHost(r.Host) {
		return false
	}
	h, pattern := hp.pages.Handler(r)
	if pattern == "" {
		return false
	}
	w := &pageWriter{header: http.Header{}}
	h.ServeHTTP(w, r)
	w.writeTo(nc, r)
	linger(nc)
	return true
}

// pageWriter is an http.ResponseWriter that holds the whole response, so
// that it goes out with its length. Owned by the handshake goroutine.
type pageWriter struct {
	header http.Header
	status int // 0 until WriteHeader or Write
	body   bytes.Buffer
}

func (w *pageWriter) Header() http.Header { return w.header }

func (w *pageWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *pageWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// writeTo writes the response to r on nc, with Connection: close; errors
// end the socket, which is closed after it anyway.
func (w *pageWriter) writeTo(nc net.Conn, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	resp := &http.Response{
		StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Request: r, Close: true,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()),
	}
	bw := bufio.NewWriter(nc)
	if resp.Write(bw) == nil {
		_ = bw.Flush()
	}
}

// linger ends the writing side of nc, then reads and drops what the client
// still sends, for lingerTime or lingerBytes at most, so that the client
// reads the answer before the socket closes (a socket closed with unread
// input sends a reset instead).
func linger(nc net.Conn) {
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, nc, lingerBytes)
}
