// Package client is the Go client for pushfabric edges. It speaks the frame
// format of package wire over WebSocket or framed TCP, either over TLS
// (wss://, tls://) too: it connects and
// authenticates, receives pushes, answers keepalive pings, and sends
// requests whose responses it streams back.
//
// A Conn has one reader goroutine, which Close (or the server closing the
// connection) ends. Pushes are delivered in order through Recv, or to
// Options.OnPush. A client that stops taking pushes stops reading its
// socket: the server then sees a slow client, which is what it should see.
//
// A Session ([Connect]) is a client that comes back: it holds a session
// across connections, reconnecting with backoff by the close reasons of
// DESIGN §8, with a fresh token for each connect if asked, and drops
// pushes repeated across connections by push id.
//
// The package imports edge/wire, the vocabulary (push) and gobwas/ws: an
// application that connects links nothing of the edge server, the registry
// or NATS (tests/imports_test.go).
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// Frame is a protocol frame; see [wire.Frame].
type Frame = wire.Frame

// Options configure a connection. The zero value works for development
// mode with Session set.
type Options struct {
	// Token is the bearer token (production authentication). The edge
	// closes the connection token_expired when it expires, unless
	// Conn.Refresh sent a newer one first (a Session with a token
	// callback does so on its own).
	Token string
	// Session names the session in the edge's development mode.
	Session string
	// MaxFrameSize bounds frames from the server; 0: wire.DefaultMaxFrameSize.
	MaxFrameSize int
	// Buffer is how many pushes wait for Recv before the client stops
	// reading; 0: 1024.
	Buffer int
	// OnPush, when set, receives every push on the reader goroutine instead
	// of Recv. The frame's Payload is valid only during the call. In a
	// Session it runs on the session's goroutine, after the repeat check,
	// and the Payload is the callee's to keep.
	OnPush func(Frame)
	// ReadBufferSize is the socket read buffer; 0: 64 KiB.
	ReadBufferSize int
	// LocalAddr is the local address to dial from (a *net.TCPAddr, port 0
	// for any); nil: the system's choice.
	LocalAddr net.Addr
	// TLSConfig configures TLS for wss:// and tls:// addresses: RootCAs
	// are the authorities to trust (nil: the system's). Its ServerName,
	// if empty, is the address's host. Nil: the defaults.
	TLSConfig *tls.Config
	// ManualReceipts: the application confirms the pushes that ask for a
	// receipt (Frame.WantsReceipt) itself, with Confirm. By default the
	// client confirms each once the application has taken it: after
	// OnPush returns, or, with Recv, at the next Recv or a few
	// milliseconds later, several to a frame.
	ManualReceipts bool
}

// CloseError is how a connection ended when the server closed it: the
// close reason it sent (one of wire.CloseReasons: replaced, shutdown, auth,
// too_slow, protocol, idle, revoked, token_expired, overloaded, normal)
// and its message.
type CloseError struct {
	Reason  wire.CloseReason
	Message string
}

func (e *CloseError) Error() string {
	if e.Message == "" {
		return "closed by server: " + string(e.Reason)
	}
	return "closed by server: " + string(e.Reason) + ": " + e.Message
}

// UpgradeError is a WebSocket upgrade the server answered with an HTTP
// status instead: 503 at its session limit or with too many handshakes in
// flight, 429 past its connect rate (both with RetryAfter: try again
// later, which Session does with its backoff), 403 for a page from an
// origin it does not allow, 400 for a request it could not read.
type UpgradeError struct {
	Status     int
	Message    string        // the response's text, up to 512 bytes
	RetryAfter time.Duration // its Retry-After, when it gave one in seconds
}

func (e *UpgradeError) Error() string {
	s := fmt.Sprintf("the edge refused the WebSocket upgrade: %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return s
}

// maxRetryAfter bounds a Retry-After read, in seconds (a day): more would
// overflow a time.Duration.
const maxRetryAfter = 86400

// upgradeRefused reads the response to a refused upgrade into an
// UpgradeError: the body only as far as its Content-Length says, so that
// a server that keeps the socket open cannot hold the dial.
func upgradeRefused(status int, resp io.Reader) *UpgradeError {
	e := &UpgradeError{Status: status}
	r, err := http.ReadResponse(bufio.NewReader(io.LimitReader(resp, 16<<10)), nil)
	if err != nil {
		return e
	}
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(min(secs, maxRetryAfter)) * time.Second
	}
	if r.ContentLength > 0 {
		b, _ := io.ReadAll(io.LimitReader(r.Body, min(r.ContentLength, 512)))
		e.Message = strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	}
	return e
}

// RequestError is an error frame the server sent for a request.
type RequestError struct {
	Code    wire.ErrorCode
	Message string
}

func (e *RequestError) Error() string { return string(e.Code) + ": " + e.Message }

// ErrClosed is returned by operations on a connection that has ended for a
// reason other than the server's close frame (Close, or a broken socket).
var ErrClosed = errors.New("client: connection closed")

// Conn is a client connection to an edge.
type Conn struct {
	nc       net.Conn
	ws       bool
	max      int
	br       *bufio.Reader
	session  string
	node     string
	token    string // Options.Token: what the connection was made with
	onPush   func(Frame)
	manual   bool          // Options.ManualReceipts
	receipts *confirmer    // confirmations of pushes taken, not sent yet
	pushes   chan Frame    // closed by the reader when the connection ends
	done     chan struct{} // closed by the reader when the connection ends
	quit     chan struct{} // closed by Close, once: the reader stops waiting for Recv
	quitOnce sync.Once
	wmu      sync.Mutex // serialises writes
	nextReq  atomic.Uint64
	readDone sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*call // guarded by mu
	close *CloseError      // guarded by mu: the server's close frame
	err   error            // guarded by mu: why the reader ended
}

// Dial connects to addr and waits for the server's welcome: addr is
// ws://host:port/path for WebSocket or tcp://host:port for framed TCP, or
// over TLS wss://host:port/path and tls://host:port (Options.TLSConfig).
// It fails with a *CloseError if the server rejects the client, and with
// the TLS handshake's error if the server's certificate is not trusted.
func Dial(ctx context.Context, addr string, o Options) (*Conn, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &Conn{max: o.MaxFrameSize, token: o.Token, onPush: o.OnPush, manual: o.ManualReceipts, done: make(chan struct{}), quit: make(chan struct{}), calls: map[string]*call{}}
	c.receipts = &confirmer{send: c.confirmIDs}
	if c.max == 0 {
		c.max = wire.DefaultMaxFrameSize
	}
	bufSize := o.ReadBufferSize
	if bufSize == 0 {
		bufSize = 64 << 10
	}
	switch u.Scheme {
	case "ws", "wss":
		err = c.dialWS(ctx, u, o, bufSize)
	case "tcp", "tls":
		err = c.dialTCP(ctx, u, o, bufSize)
	default:
		err = errScheme(u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if err := c.awaitWelcome(ctx); err != nil {
		_ = c.nc.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	buffer := o.Buffer
	if buffer == 0 {
		buffer = 1024
	}
	c.pushes = make(chan Frame, buffer)
	c.readDone.Add(1)
	go c.readLoop()
	return c, nil
}

// errScheme is the error of an address whose scheme Dial does not know.
func errScheme(scheme string) error {
	return fmt.Errorf("scheme %q: want ws, wss, tcp or tls", scheme)
}

// dialTCP connects to a tcp:// or tls:// address and says hello; a tls://
// one has its TLS handshake done first.
func (c *Conn) dialTCP(ctx context.Context, u *url.URL, o Options, bufSize int) error {
	d := &net.Dialer{LocalAddr: o.LocalAddr}
	var nc net.Conn
	var err error
	if u.Scheme == "tls" {
		nc, err = (&tls.Dialer{NetDialer: d, Config: o.TLSConfig}).DialContext(ctx, "tcp", u.Host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return err
	}
	c.nc, c.br = nc, bufio.NewReaderSize(nc, bufSize)
	return c.send(&Frame{Type: wire.TypeHello, ID: o.Session, Payload: []byte(o.Token)})
}

func (c *Conn) dialWS(ctx context.Context, u *url.URL, o Options, bufSize int) error {
	q := u.Query()
	if o.Session != "" {
		q.Set("session", o.Session)
	}
	if o.Token != "" {
		q.Set("token", o.Token)
	}
	u.RawQuery = q.Encode()
	d := net.Dialer{LocalAddr: o.LocalAddr}
	var refused *UpgradeError
	nc, br, _, err := ws.Dialer{ReadBufferSize: bufSize, NetDial: d.DialContext, TLSConfig: o.TLSConfig,
		OnStatusError: func(status int, _ []byte, resp io.Reader) { refused = upgradeRefused(status, resp) },
	}.Dial(ctx, u.String())
	if refused != nil {
		return refused
	}
	if err != nil {
		return err
	}
	c.nc, c.ws = nc, true
	if br == nil {
		br = bufio.NewReaderSize(nc, bufSize)
	}
	c.br = br
	return nil
}

// awaitWelcome reads the first frame, bounded by ctx.
func (c *Conn) awaitWelcome(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		_ = c.nc.SetReadDeadline(d)
		defer c.nc.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	body, err := c.readFrame(nil)
	if err != nil {
		return err
	}
	f, err := wire.Decode(body)
	if err != nil {
		return err
	}
	switch f.Type {
	case wire.TypeWelcome:
		c.session, c.node = f.ID, f.Name
		return nil
	case wire.TypeClose:
		return &CloseError{Reason: wire.CloseReason(f.Name), Message: string(f.Payload)}
	}
	return fmt.Errorf("first frame is %v, want welcome", f.Type)
}

// Session is the session the server gave this connection.
func (c *Conn) Session() string { return c.session }

// Node is the edge node that holds the connection.
func (c *Conn) Node() string { return c.node }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended: a *CloseError if the server closed it
// with a close frame, ErrClosed or the transport's error otherwise. Nil
// while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.close != nil {
		return c.close
	}
	return c.err
}

// Recv returns the next push, or a connection-level error frame (Type
// wire.TypeError, empty ID). Once the connection has ended and every push
// was received, it returns Err(). Unless Options.ManualReceipts, a push
// that asks for a receipt is confirmed by the next Recv, or a few
// milliseconds after this one returns it.
func (c *Conn) Recv(ctx context.Context) (Frame, error) {
	c.receipts.flush() // the application is done with what it took before
	select {
	case f, ok := <-c.pushes:
		if !ok {
			return Frame{}, c.Err()
		}
		c.taken(&f)
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

// Request sends a request and yields its response frames in order. The
// sequence ends after the server's end frame; an error frame is yielded as
// a *RequestError and ends it. Stopping early, or ctx ending, cancels the
// request on the server.
func (c *Conn) Request(ctx context.Context, method string, payload []byte) iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		id := strconv.FormatUint(c.nextReq.Add(1), 36)
		cl := &call{frames: make(chan Frame, 64), gone: make(chan struct{})}
		c.mu.Lock()
		c.calls[id] = cl
		c.mu.Unlock()
		defer c.forget(id, cl)
		if err := c.send(&Frame{Type: wire.TypeRequest, ID: id, Name: method, Payload: payload}); err != nil {
			yield(Frame{}, err)
			return
		}
		for {
			f, err := c.nextResponse(ctx, cl.frames)
			if err != nil {
				_ = c.send(&Frame{Type: wire.TypeCancel, ID: id})
				yield(Frame{}, err)
				return
			}
			switch f.Type {
			case wire.TypeEnd:
				return
			case wire.TypeError:
				yield(Frame{}, &RequestError{Code: wire.ErrorCode(f.Name), Message: string(f.Payload)})
				return
			}
			if !yield(f, nil) {
				_ = c.send(&Frame{Type: wire.TypeCancel, ID: id})
				return
			}
		}
	}
}

func (c *Conn) nextResponse(ctx context.Context, ch chan Frame) (Frame, error) {
	select {
	case f, ok := <-ch:
		if !ok {
			if err := c.Err(); err != nil {
				return Frame{}, err
			}
			return Frame{}, ErrClosed
		}
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

// call is a request in flight: the reader sends its frames until the
// caller is gone.
type call struct {
	frames chan Frame    // closed by the reader when the connection ends
	gone   chan struct{} // closed by the caller when it stops listening
}

func (c *Conn) forget(id string, cl *call) {
	c.mu.Lock()
	delete(c.calls, id)
	c.mu.Unlock()
	close(cl.gone)
}

// Close sends a close frame and closes the connection, then waits for the
// reader goroutine to end. Pushes not yet received are dropped.
func (c *Conn) Close() error {
	c.quitOnce.Do(func() { close(c.quit) })
	c.receipts.stop()
	_ = c.send(&Frame{Type: wire.TypeClose, Name: "normal"})
	err := c.nc.Close()
	c.readDone.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil // the server answered the close frame first
	}
	return err
}

// send writes one frame.
func (c *Conn) send(f *Frame) error {
	var (
		b   []byte
		err error
	)
	if c.ws {
		b, err = wire.AppendWSMasked(nil, f, mask())
	} else {
		b, err = wire.AppendTCP(nil, f)
	}
	if err != nil {
		return err
	}
	return c.write(b)
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

func mask() (m [4]byte) {
	v := rand.Uint32()
	m[0], m[1], m[2], m[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return m
}

// readFrame reads one frame body into buf, answering WebSocket pings.
func (c *Conn) readFrame(buf []byte) ([]byte, error) {
	if !c.ws {
		return wire.ReadTCP(c.br, buf, c.max)
	}
	return wire.ReadWS(c.br, buf, c.max, false, c.onControl)
}

func (c *Conn) onControl(op byte, p []byte) error {
	switch op {
	case wire.WSPing:
		m := mask()
		return c.write(wire.AppendWSControl(nil, wire.WSPong, p, &m))
	case wire.WSClose:
		m := mask()
		_ = c.write(wire.AppendWSControl(nil, wire.WSClose, p, &m))
		return io.EOF
	}
	return nil
}

// endFlushTimeout bounds the last receipts' write as the connection ends.
const endFlushTimeout = time.Second

// readLoop delivers frames until the connection ends.
func (c *Conn) readLoop() {
	defer c.readDone.Done()
	var buf []byte
	var err error
	for {
		var body []byte
		if body, err = c.readFrame(buf); err != nil {
			break
		}
		buf = body[:0]
		if err = c.dispatch(body); err != nil {
			break
		}
		if c.onPush != nil && c.br.Buffered() == 0 {
			c.receipts.flush() // what OnPush took, one frame per read
		}
	}
	c.end(err)
}

func (c *Conn) dispatch(body []byte) error {
	f, err := wire.Decode(body)
	if err != nil {
		return err
	}
	switch {
	case f.Type == wire.TypePush && c.onPush != nil:
		c.onPush(f)
		c.taken(&f)
	case f.Type == wire.TypePush || f.Type == wire.TypeError && f.ID == "":
		f.Payload = append([]byte(nil), f.Payload...)
		select {
		case c.pushes <- f:
		case <-c.quit:
			return ErrClosed
		}
	case f.Type == wire.TypeResponse || f.Type == wire.TypeEnd || f.Type == wire.TypeError:
		f.Payload = append([]byte(nil), f.Payload...)
		c.mu.Lock()
		cl := c.calls[f.ID]
		c.mu.Unlock()
		if cl != nil {
			select {
			case cl.frames <- f:
			case <-cl.gone:
			}
		}
	case f.Type == wire.TypePing:
		return c.send(&Frame{Type: wire.TypePong, Payload: f.Payload})
	case f.Type == wire.TypeClose:
		c.mu.Lock()
		c.close = &CloseError{Reason: wire.CloseReason(f.Name), Message: string(f.Payload)}
		c.mu.Unlock()
	}
	return nil
}

// end records why the connection ended and releases everyone waiting.
func (c *Conn) end(err error) {
	// A server that closed its side (a drained connection) still reads:
	// what the application took is confirmed, so that it is not sent again.
	_ = c.nc.SetWriteDeadline(time.Now().Add(endFlushTimeout))
	c.receipts.stop()
	_ = c.nc.Close()
	c.mu.Lock()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	}
	c.err = err
	for id, cl := range c.calls {
		close(cl.frames)
		delete(c.calls, id)
	}
	c.mu.Unlock()
	close(c.pushes)
	close(c.done)
}
