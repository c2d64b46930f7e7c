package edge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// maxHello bounds the TCP hello frame (it carries a token).
const maxHello = 16 << 10

// handshake runs on a short-lived goroutine per accepted socket: the
// transport handshake and authentication, which need deep stacks and
// buffers, happen here so the connection's long-lived reader starts small.
func (s *Server) handshake(nc net.Conn, fr framing) {
	if !s.trackHandshake(nc) {
		_ = nc.Close()
		return
	}
	defer s.untrackHandshake(nc)
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if s.cfg.HandshakeTimeout > 0 {
		_ = nc.SetDeadline(deadline)
	}
	cr, err := fr.handshake(nc)
	if err != nil {
		s.log.Debug("handshake failed", zap.String("transport", fr.name()),
			zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		s.metrics.rejections[RejectHandshake].Inc()
		if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrTooLarge) {
			s.reject(nc, fr, CloseProtocol, err.Error())
		}
		_ = nc.Close()
		return
	}
	cr.Local, cr.Remote = nc.LocalAddr(), nc.RemoteAddr()
	ctx, cancel := context.WithDeadline(s.baseCtx, deadline)
	session, err := s.auth.Authenticate(ctx, cr)
	cancel()
	if err == nil && !ValidSession(session) {
		err = fmt.Errorf("authenticator returned invalid session id %q", session)
	}
	if err != nil {
		s.metrics.rejections[RejectAuth].Inc()
		s.log.Debug("client rejected", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		s.reject(nc, fr, CloseAuth, err.Error())
		return
	}
	_ = nc.SetDeadline(time.Time{})
	if !s.admit(s.newConn(nc, fr, session)) {
		s.metrics.rejections[RejectShutdown].Inc()
		s.reject(nc, fr, CloseShutdown, "the node is shutting down")
	}
}

// trackHandshake records a socket in its handshake so Shutdown can cut it
// short; false once the server is closing.
func (s *Server) trackHandshake(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.shaking[nc] = struct{}{}
	return true
}

func (s *Server) untrackHandshake(nc net.Conn) {
	s.mu.Lock()
	delete(s.shaking, nc)
	s.mu.Unlock()
}

// reject tells a client that never got a session why, and closes.
func (s *Server) reject(nc net.Conn, fr framing, reason CloseReason, msg string) {
	b, _ := fr.appendFrame(nil, &Frame{Type: wire.TypeClose, Name: string(reason), Payload: []byte(msg)})
	b = fr.appendGoodbye(b, reason)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(b)
	_ = nc.Close()
}

func (tcpFraming) name() string { return "tcp" }

// handshake reads the hello frame exactly, without read-ahead, so nothing
// the client sends after it is lost.
func (tcpFraming) handshake(nc net.Conn) (Credentials, error) {
	var hdr [wire.LengthSize]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return Credentials{}, fmt.Errorf("read hello: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxHello {
		return Credentials{}, fmt.Errorf("hello of %d bytes: %w", n, wire.ErrTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(nc, body); err != nil {
		return Credentials{}, fmt.Errorf("read hello: %w", err)
	}
	f, err := wire.Decode(body)
	if err != nil {
		return Credentials{}, fmt.Errorf("hello: %w", err)
	}
	if f.Type != wire.TypeHello {
		return Credentials{}, fmt.Errorf("%w: first frame is %v, want hello", wire.ErrMalformed, f.Type)
	}
	return Credentials{Transport: "tcp", Token: string(f.Payload), Session: f.ID}, nil
}

func (wsFraming) name() string { return "websocket" }

// handshake upgrades the connection, reading the token from ?token= or an
// Authorization: Bearer header and a development session from ?session=.
func (wsFraming) handshake(nc net.Conn) (Credentials, error) {
	cr := Credentials{Transport: "websocket"}
	u := ws.Upgrader{
		OnRequest: func(uri []byte) error {
			q, err := url.ParseRequestURI(string(uri))
			if err != nil {
				return ws.RejectConnectionError(ws.RejectionStatus(400), ws.RejectionReason("bad request URI"))
			}
			v := q.Query()
			cr.Token, cr.Session = v.Get("token"), v.Get("session")
			return nil
		},
		OnHeader: func(key, value []byte) error {
			if bytes.EqualFold(key, []byte("Authorization")) {
				if tok, ok := bytes.CutPrefix(value, []byte("Bearer ")); ok {
					cr.Token = string(tok)
				}
			}
			return nil
		},
	}
	if _, err := u.Upgrade(nc); err != nil {
		return cr, fmt.Errorf("websocket upgrade: %w", err)
	}
	return cr, nil
}
