package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// handshakePolicy is what handshakes check, from the Config. Read-only.
type handshakePolicy struct {
	maxSize int // Config.MaxHandshakeSize
	origins originPolicy
	// loopbackHosts: the Host header must name loopback (development
	// mode, where a DNS-rebinding page would otherwise be its own origin).
	loopbackHosts bool
	pages         PageMux // Options.Pages; nil: none
	// fullFor, set while the node is at its session limit, reports
	// whether a WebSocket client with these credentials would be refused
	// at it: it is then answered 503 instead of upgraded. Nil: none is.
	fullFor func(cr Credentials) bool
}

// handshake runs on a short-lived goroutine per accepted socket: the
// transport handshake and authentication, which need deep stacks and
// buffers, happen here so the connection's long-lived reader starts small.
// It gives back the handshake slot admitSocket took.
func (s *Server) handshake(nc net.Conn, fr framing) {
	defer s.handshakeDone()
	defer s.recoverHandshake(nc)
	if !s.shaking.add(nc, nil) {
		_ = nc.Close()
		return
	}
	defer s.shaking.remove(nc)
	raw := nc // the socket as accepted: what shaking holds
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if s.cfg.HandshakeTimeout > 0 {
		_ = nc.SetDeadline(deadline)
	}
	nc, remote, err := s.transport(nc)
	if err != nil {
		s.handshakeFailed(nc, remote, fr, err)
		return
	}
	cr, early, err := fr.handshake(nc, s.policy(nc, remote, deadline))
	if err != nil {
		s.handshakeFailed(nc, remote, fr, err)
		return
	}
	cr.Local, cr.Remote = nc.LocalAddr(), remote
	id, ok := s.authorize(nc, fr, cr, deadline)
	if !ok {
		return
	}
	// The socket becomes a connection's: Shutdown ends it as one (a close
	// frame, a drain), no longer by closing it as a handshake. Once
	// Shutdown has begun, it has closed the socket already.
	if !s.shaking.release(raw) {
		s.releaseSession()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	c := s.newConn(nc, remote, fr, id.Session)
	c.groups, c.expires = id.Groups, id.Expires
	c.in.pending = early
	if !s.admit(c) {
		s.releaseSession()
		s.metrics.rejections[RejectShutdown].Inc()
		s.reject(nc, fr, wire.CloseShutdown, "the node is shutting down")
	}
}

// policy is what the handshake of nc, from remote, checks: s.hs, and
// while the node is full, whether a WebSocket client may upgrade at all: one
// that authenticates as a session the node does not hold would only be
// refused at the session limit after it, so it is answered 503 with
// Retry-After before, which load balancers understand. It is therefore
// authenticated twice when it may upgrade (a takeover, a client the
// authenticator refuses, which is then told why as usual).
func (s *Server) policy(nc net.Conn, remote net.Addr, deadline time.Time) *handshakePolicy {
	if !s.Full() {
		return &s.hs
	}
	hp := s.hs
	hp.fullFor = func(cr Credentials) bool {
		cr.Local, cr.Remote = nc.LocalAddr(), remote
		ctx, cancel := context.WithDeadline(s.baseCtx, deadline)
		defer cancel()
		id, err := authenticate(ctx, s.auth, cr)
		return err == nil && s.reg.Get(id.Session) == nil && s.Full()
	}
	return &hp
}

// authorize authenticates the client, checks its groups against
// Config.MaxGroups, runs the Admit hook and takes a session slot
// (reserveSession), and returns who it is. A client refused on the way
// is counted, told why and closed, and ok is false.
func (s *Server) authorize(nc net.Conn, fr framing, cr Credentials, deadline time.Time) (id Identity, ok bool) {
	ctx, cancel := context.WithDeadline(s.baseCtx, deadline)
	id, err := authenticate(ctx, s.auth, cr)
	cancel()
	if err == nil {
		err = s.tooManyGroups(id.Groups)
	}
	if err != nil {
		s.metrics.rejections[RejectAuth].Inc()
		s.log.Debug("client rejected", zap.Stringer("remote", cr.Remote), zap.Error(err))
		s.reject(nc, fr, wire.CloseAuth, err.Error())
		return Identity{}, false
	}
	if err := s.admissible(id.Session); err != nil {
		s.metrics.rejections[RejectRefused].Inc()
		s.log.Debug("client refused before it took its session", zap.String("session", id.Session), zap.Error(err))
		s.reject(nc, fr, wire.CloseShutdown, err.Error())
		return Identity{}, false
	}
	if !s.reserveSession(id.Session) {
		s.refusedFull(cr.Remote)
		s.reject(nc, fr, wire.CloseOverloaded, fullMessage)
		return Identity{}, false
	}
	return id, true
}

// transport reads the PROXY header of a trusted source, then runs the
// TLS handshake if the server speaks TLS. It returns the connection to
// speak the protocol on (nc, or its TLS connection) and the client's
// address (the header's, or the socket's).
func (s *Server) transport(nc net.Conn) (net.Conn, net.Addr, error) {
	remote := nc.RemoteAddr()
	if s.proxies.trusts(remote) {
		client, err := readProxyHeader(nc, remote, s.hs.maxSize)
		if err != nil {
			return nc, remote, err
		}
		remote = client
		if !s.limits.perIP.allow(remote, time.Now()) {
			return nc, remote, errConnectRatePerIP
		}
	}
	if s.tls == nil {
		return nc, remote, nil
	}
	tc := tls.Server(nc, s.tls)
	if err := tc.Handshake(); err != nil {
		return nc, remote, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, remote, nil
}

// fullMessage tells a client refused at the session limit why.
const fullMessage = "the node holds as many sessions as it may; try again later"

// errFull: a WebSocket upgrade was answered 503 at the session limit.
var errFull = errors.New("at the session limit")

// refusedFull counts and logs a client refused at the session limit.
func (s *Server) refusedFull(remote net.Addr) {
	s.limitRefused(LimitSessions)
	s.metrics.rejections[RejectOverloaded].Inc()
	s.log.Debug("client refused at the session limit", zap.Stringer("remote", remote), zap.Int("max_sessions", s.cfg.MaxSessions))
}

// errConnectRatePerIP: the client a PROXY header named is over
// Config.ConnectRatePerIP.
var errConnectRatePerIP = errors.New("over the connect rate per address")

// admissible runs the Admit hook, if any.
func (s *Server) admissible(session string) error {
	if s.hooks.Admit == nil {
		return nil
	}
	return s.hooks.Admit(session)
}

// handshakeFailed counts and logs a failed handshake and closes the
// socket. A WebSocket request over the size limit is answered 431 (other
// refused upgrades were answered by the upgrader); a TCP client whose
// hello was malformed or too large is told so.
func (s *Server) handshakeFailed(nc net.Conn, remote net.Addr, fr framing, err error) {
	switch {
	case errors.Is(err, errPageServed): // answered: no client was refused
		_ = nc.Close()
		return
	case errors.Is(err, errFull): // answered 503
		s.refusedFull(remote)
		_ = nc.Close()
		return
	case errors.Is(err, errConnectRatePerIP):
		s.refuseSocket(nc, fr, LimitConnectRatePerIP)
		return
	}
	reason := RejectHandshake
	if errors.Is(err, errOriginRefused) {
		reason = RejectOrigin
	}
	s.metrics.rejections[reason].Inc()
	s.log.Debug("handshake failed", zap.String("transport", fr.name()),
		zap.Stringer("remote", remote), zap.Error(err))
	switch {
	case errors.Is(err, errRequestTooLarge):
		refuseTooLarge(nc, s.hs.maxSize)
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrTooLarge):
		s.reject(nc, fr, wire.CloseProtocol, err.Error())
	}
	_ = nc.Close()
}

// reject tells a client that never got a session why, and closes.
func (s *Server) reject(nc net.Conn, fr framing, reason wire.CloseReason, msg string) {
	b, _ := fr.appendFrame(nil, &Frame{Type: wire.TypeClose, Name: string(reason), Payload: []byte(msg)})
	b = fr.appendGoodbye(b, reason, 0)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(b)
	_ = nc.Close()
}

func (tcpFraming) name() string { return "tcp" }

// handshake reads the hello frame exactly, without read-ahead, so nothing
// the client sends after it is lost. Its memory grows with the bytes that
// arrive, not with the length announced: a slow client announcing
// Config.MaxHandshakeSize and sending no more holds a few hundred bytes.
func (tcpFraming) handshake(nc net.Conn, hp *handshakePolicy) (Credentials, []byte, error) {
	var hdr [wire.LengthSize]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return Credentials{}, nil, fmt.Errorf("read hello: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(hp.maxSize) {
		return Credentials{}, nil, fmt.Errorf("hello of %d bytes, limit %d: %w", n, hp.maxSize, wire.ErrTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(nc, int64(n)))
	if err == nil && len(body) < int(n) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("read hello: %w", err)
	}
	f, err := wire.Decode(body)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("hello: %w", err)
	}
	if f.Type != wire.TypeHello {
		return Credentials{}, nil, fmt.Errorf("%w: first frame is %v, want hello", wire.ErrMalformed, f.Type)
	}
	return Credentials{Transport: "tcp", Token: string(f.Payload), Session: f.ID}, nil, nil
}

func (wsFraming) name() string { return "websocket" }

// handshake reads the upgrade request, at most hp.maxSize bytes of it,
// checks its Host and Origin and upgrades the connection, reading the token from
// ?token= or an Authorization: Bearer header and a development session
// from ?session=. It returns the bytes the client sent after the request.
// A plain GET for one of hp.pages is answered instead (errPageServed).
func (wsFraming) handshake(nc net.Conn, hp *handshakePolicy) (Credentials, []byte, error) {
	req, early, err := readUpgradeRequest(nc, hp.maxSize)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	if servePage(nc, req, hp) {
		return Credentials{}, nil, errPageServed
	}
	up := upgrade{cr: Credentials{Transport: "websocket"}, hp: hp}
	u := ws.Upgrader{OnRequest: up.onRequest, OnHost: up.onHost, OnHeader: up.onHeader, OnBeforeUpgrade: up.checkOrigin}
	if _, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(req), nc}); err != nil {
		switch {
		case up.full:
			err = errFull
		case up.refused != "":
			err = fmt.Errorf("%w: %s", errOriginRefused, up.refused)
		}
		return up.cr, nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	return up.cr, early, nil
}

// upgrade is what one WebSocket upgrade learns from the request, through
// the upgrader's callbacks.
type upgrade struct {
	cr      Credentials
	hp      *handshakePolicy
	host    string
	hosts   int // Host headers seen
	origin  string
	origins int    // Origin headers seen; one means the request comes from a browser page
	refused string // why checkOrigin refused the request; "" if it did not
	full    bool   // checkOrigin refused it at the session limit
}

func (u *upgrade) onRequest(uri []byte) error {
	q, err := url.ParseRequestURI(string(uri))
	if err != nil {
		return ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest), ws.RejectionReason("bad request URI"))
	}
	v := q.Query()
	u.cr.Token, u.cr.Session = v.Get("token"), v.Get("session")
	return nil
}

// onHost refuses a second Host header: the node does not guess which one
// names it.
func (u *upgrade) onHost(host []byte) error {
	if u.hosts++; u.hosts > 1 {
		return ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest), ws.RejectionReason("more than one Host header\n"))
	}
	u.host = string(host)
	return nil
}

func (u *upgrade) onHeader(key, value []byte) error {
	switch {
	case bytes.EqualFold(key, []byte("Authorization")):
		if tok, ok := bytes.CutPrefix(value, []byte("Bearer ")); ok {
			u.cr.Token = string(tok)
		}
	case bytes.EqualFold(key, []byte("Origin")):
		u.origin = string(value)
		u.origins++
	}
	return nil
}

// checkOrigin refuses, with 403 and the reason, a request whose Host is
// not loopback in development mode, one with more than one Origin header,
// and a browser page from an origin that may not connect; and, with 503,
// one that would be refused at the session limit (handshakePolicy.fullFor).
func (u *upgrade) checkOrigin() (ws.HandshakeHeader, error) {
	switch {
	case u.hp.loopbackHosts && !loopbackHost(u.host):
		u.refused = "host " + strconv.Quote(u.host) + " is not loopback: development mode serves loopback names only"
	case u.origins > 1:
		u.refused = "more than one Origin header"
	case u.origins == 1 && !u.hp.origins.allows(u.origin, u.host):
		u.refused = "origin " + strconv.Quote(u.origin) + " may not connect here"
	case u.hp.fullFor != nil && u.hp.fullFor(u.cr):
		u.full = true
		return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusServiceUnavailable),
			ws.RejectionHeader(ws.HandshakeHeaderHTTP{"Retry-After": {"1"}}), ws.RejectionReason(fullMessage+"\n"))
	default:
		return nil, nil
	}
	return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden), ws.RejectionReason(u.refused+"\n"))
}

// errRequestTooLarge: the upgrade request did not end within the limit.
var errRequestTooLarge = errors.New("request line and headers too large")

// readUpgradeRequest reads an HTTP request through the blank line that ends
// its headers, reading no more than limit bytes in all. It returns the
// request and a copy of the bytes that arrived after it (nil if none).
func readUpgradeRequest(r io.Reader, limit int) (req, rest []byte, err error) {
	buf := make([]byte, 0, min(limit, 4<<10))
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return nil, nil, fmt.Errorf("over %d bytes: %w", limit, errRequestTooLarge)
			}
			buf = append(make([]byte, 0, min(2*cap(buf), limit)), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		from := max(0, len(buf)-2)
		buf = buf[:len(buf)+n]
		if end := headerEnd(buf, from); end >= 0 {
			if end < len(buf) {
				rest = bytes.Clone(buf[end:])
			}
			return buf[:end], rest, nil
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("read request: %w", err)
		}
	}
}

// headerEnd is the length of b through the empty line that ends an HTTP
// request's headers, looking at line ends from index from on; -1 if b has
// none yet. Lines end with "\n" or "\r\n".
func headerEnd(b []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// Lingering on a refused upgrade: how long, and how many bytes, the node
// reads and drops so that the client sees the answer before the socket
// closes (a socket closed with unread input sends a reset instead).
const (
	lingerTime  = time.Second
	lingerBytes = 64 << 10
)

// refuseTooLarge answers an upgrade request over the limit with 431 and
// closes the socket.
func refuseTooLarge(nc net.Conn, limit int) {
	body := "request line and headers over " + strconv.Itoa(limit) + " bytes\n"
	_ = nc.SetWriteDeadline(time.Now().Add(lingerTime))
	_, _ = io.WriteString(nc, "HTTP/1.1 431 Request Header Fields Too Large\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: "+strconv.Itoa(len(body))+
		"\r\nConnection: close\r\n\r\n"+body)
	linger(nc)
	_ = nc.Close()
}
