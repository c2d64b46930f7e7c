package edge

import (
	"bufio"
	"net"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// framing is what differs between the transports: how frames are delimited
// on the stream and how pings and the end of the stream look.
type framing interface {
	name() string
	// handshake reads the transport's opening and the client's
	// credentials, and returns any bytes it read past the opening.
	handshake(nc net.Conn, hp *handshakePolicy) (Credentials, []byte, error)
	appendFrame(dst []byte, f *Frame) ([]byte, error)
	appendPing(dst []byte) []byte
	appendPong(dst []byte, payload []byte) []byte
	// appendGoodbye appends the transport's last bytes after the close
	// frame; a WebSocket close frame has code, or r's own code if 0.
	appendGoodbye(dst []byte, r wire.CloseReason, code uint16) []byte
	// readFrame reads one frame body sent by the client. Transport control
	// (WebSocket ping and close) is handled on c.
	readFrame(c *Conn, r *bufio.Reader) ([]byte, error)
}

// tcpFraming: a 4-byte big-endian length, then the frame. Pings and pongs
// are protocol frames.
type tcpFraming struct{}

func (tcpFraming) appendFrame(dst []byte, f *Frame) ([]byte, error) { return wire.AppendTCP(dst, f) }

func (t tcpFraming) appendPing(dst []byte) []byte {
	b, _ := wire.AppendTCP(dst, &Frame{Type: wire.TypePing})
	return b
}

func (t tcpFraming) appendPong(dst []byte, payload []byte) []byte {
	b, _ := wire.AppendTCP(dst, &Frame{Type: wire.TypePong, Payload: payload})
	return b
}

func (tcpFraming) appendGoodbye(dst []byte, _ wire.CloseReason, _ uint16) []byte { return dst }

func (tcpFraming) readFrame(c *Conn, r *bufio.Reader) ([]byte, error) {
	return wire.ReadTCP(r, nil, c.srv.cfg.MaxFrameSize)
}

// wsFraming: one binary WebSocket message per frame; pings, pongs and the
// close handshake are WebSocket control frames.
type wsFraming struct{}

func (wsFraming) appendFrame(dst []byte, f *Frame) ([]byte, error) { return wire.AppendWS(dst, f) }

func (wsFraming) appendPing(dst []byte) []byte {
	return wire.AppendWSControl(dst, wire.WSPing, nil, nil)
}

func (wsFraming) appendPong(dst []byte, payload []byte) []byte {
	return wire.AppendWSControl(dst, wire.WSPong, payload, nil)
}

func (wsFraming) appendGoodbye(dst []byte, r wire.CloseReason, code uint16) []byte {
	if code == 0 {
		code = r.WSCode()
	}
	return wire.AppendWSClose(dst, code, string(r), nil)
}

func (wsFraming) readFrame(c *Conn, r *bufio.Reader) ([]byte, error) {
	return wire.ReadWS(r, nil, c.srv.cfg.MaxFrameSize, true, c.onWSControl)
}
