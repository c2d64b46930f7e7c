package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// WebSocket opcodes (RFC 6455 §5.2) that this protocol uses.
const (
	WSContinuation byte = 0x0
	WSText         byte = 0x1
	WSBinary       byte = 0x2
	WSClose        byte = 0x8
	WSPing         byte = 0x9
	WSPong         byte = 0xA
)

// MaxWSHeader is the largest WebSocket frame header.
const MaxWSHeader = 14

// maxControl is the largest control frame payload (RFC 6455 §5.5).
const maxControl = 125

// ErrInvalidUTF8: a text message or a close frame's reason that is not
// UTF-8 (RFC 6455 §8.1). It wraps [ErrMalformed]; a WebSocket server
// closes with 1007 for it, not 1002.
var ErrInvalidUTF8 = fmt.Errorf("%w: websocket text not UTF-8", ErrMalformed)

// AppendWS appends f as one unmasked binary WebSocket message, the way a
// server sends it.
func AppendWS(dst []byte, f *Frame) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	dst = AppendWSHeader(dst, WSBinary, f.Len(), nil)
	return appendValid(dst, f), nil
}

// AppendWSMasked appends f as one binary WebSocket message masked with mask,
// the way a client must send it.
func AppendWSMasked(dst []byte, f *Frame, mask [4]byte) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	dst = AppendWSHeader(dst, WSBinary, f.Len(), &mask)
	start := len(dst)
	dst = appendValid(dst, f)
	ws.Cipher(dst[start:], mask, 0)
	return dst, nil
}

// AppendWSControl appends a control frame (close, ping, pong). The payload is
// cut to 125 bytes, the limit for control frames. A nil mask sends it
// unmasked (server side).
func AppendWSControl(dst []byte, op byte, payload []byte, mask *[4]byte) []byte {
	if len(payload) > maxControl {
		payload = payload[:maxControl]
	}
	dst = AppendWSHeader(dst, op, len(payload), mask)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		ws.Cipher(dst[start:], *mask, 0)
	}
	return dst
}

// AppendWSClose appends a close frame with a status code and reason text.
func AppendWSClose(dst []byte, code uint16, reason string, mask *[4]byte) []byte {
	var body [maxControl]byte
	binary.BigEndian.PutUint16(body[:], code)
	n := 2 + copy(body[2:], reason)
	return AppendWSControl(dst, WSClose, body[:n], mask)
}

// AppendWSHeader appends a final-fragment frame header for a payload of n
// bytes, masked when mask is not nil.
func AppendWSHeader(dst []byte, op byte, n int, mask *[4]byte) []byte {
	var maskBit byte
	if mask != nil {
		maskBit = 0x80
	}
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, maskBit|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, maskBit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// WSControlFunc handles a control frame met while reading a message. The
// payload is unmasked and valid only during the call. A non-nil error stops
// the read and is returned by [ReadWS].
type WSControlFunc func(op byte, payload []byte) error

// ReadWS reads one WebSocket data message from r into buf (growing it when
// too small) and returns its payload, reassembling fragments and unmasking.
// Control frames met on the way, including between fragments, go to
// onControl; a close frame only with a valid code (RFC 6455 §7.4) and a
// UTF-8 reason, or empty. fromClient says which side sent the bytes: a
// client must mask every frame and a server must not (RFC 6455 §5.1). A
// message longer than max wraps [ErrTooLarge], before its payload is read;
// a protocol violation wraps [ErrMalformed], text that is not UTF-8 (in a
// text message or a close reason) is [ErrInvalidUTF8]. All leave the
// stream unusable. Text messages are returned as binary ones are. Memory
// grows with the payload bytes that arrive, not with the lengths that
// headers announce.
func ReadWS(r *bufio.Reader, buf []byte, max int, fromClient bool, onControl WSControlFunc) ([]byte, error) {
	msg := buf[:0]
	inMessage, text := false, false
	for {
		h, err := readWSHeader(r, fromClient)
		if err != nil {
			return nil, err
		}
		if h.op >= WSClose {
			if err := readWSControl(r, h, onControl); err != nil {
				return nil, err
			}
			continue
		}
		if (h.op == WSContinuation) != inMessage {
			return nil, fmt.Errorf("%w: websocket opcode %#x out of sequence", ErrMalformed, h.op)
		}
		if !inMessage {
			inMessage, text = true, h.op == WSText
		}
		if room := max - len(msg); room < 0 || h.length > uint64(room) {
			return nil, fmt.Errorf("%w: websocket message over %d bytes", ErrTooLarge, max)
		}
		if msg, err = readWSPayload(r, msg, int(h.length), max, h); err != nil {
			return nil, err
		}
		if h.fin && text && !utf8.Valid(msg) {
			return nil, ErrInvalidUTF8
		}
		if h.fin {
			return msg, nil
		}
	}
}

type wsHeader struct {
	fin    bool
	op     byte
	masked bool
	mask   [4]byte
	length uint64
}

func readWSHeader(r *bufio.Reader, fromClient bool) (wsHeader, error) {
	var h wsHeader
	b, err := r.Peek(2)
	if err != nil {
		return h, unexpectedEOF(err, len(b))
	}
	h.fin, h.op, h.masked = b[0]&0x80 != 0, b[0]&0x0F, b[1]&0x80 != 0
	size, ext := 2, 0
	switch l := b[1] & 0x7F; l {
	case 126:
		ext = 2
	case 127:
		ext = 8
	default:
		h.length = uint64(l)
	}
	size += ext
	if h.masked {
		size += 4
	}
	if err := checkWSHeader(b[0], h, fromClient); err != nil {
		return h, err
	}
	if b, err = r.Peek(size); err != nil {
		return h, io.ErrUnexpectedEOF
	}
	switch ext {
	case 2:
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
	case 8:
		h.length = binary.BigEndian.Uint64(b[2:])
	}
	if h.masked {
		copy(h.mask[:], b[2+ext:])
	}
	_, _ = r.Discard(size)
	return h, nil
}

func checkWSHeader(b0 byte, h wsHeader, fromClient bool) error {
	switch {
	case b0&0x70 != 0:
		return fmt.Errorf("%w: websocket reserved bits set", ErrMalformed)
	case h.op > WSBinary && h.op < WSClose, h.op > WSPong:
		return fmt.Errorf("%w: websocket opcode %#x", ErrMalformed, h.op)
	case h.masked != fromClient:
		return fmt.Errorf("%w: websocket frame masking (masked=%v)", ErrMalformed, h.masked)
	case h.op >= WSClose && !h.fin:
		return fmt.Errorf("%w: fragmented websocket control frame", ErrMalformed)
	}
	return nil
}

func readWSControl(r *bufio.Reader, h wsHeader, onControl WSControlFunc) error {
	if h.length > maxControl {
		return fmt.Errorf("%w: websocket control frame of %d bytes", ErrMalformed, h.length)
	}
	p, err := r.Peek(int(h.length))
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	if h.masked {
		ws.Cipher(p, h.mask, 0)
	}
	if h.op == WSClose {
		if err := checkClose(p); err != nil {
			return err
		}
	}
	err = onControl(h.op, p)
	_, _ = r.Discard(len(p))
	return err
}

// checkClose refuses a close frame's payload that RFC 6455 §5.5.1 and
// §7.4 do not allow: one byte, a code no endpoint may send (below 1000,
// 1004-1006, 1015 up to 2999, 5000 and over), a reason that is not UTF-8.
func checkClose(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return fmt.Errorf("%w: websocket close frame of 1 byte", ErrMalformed)
	}
	if code := binary.BigEndian.Uint16(p); !validCloseCode(code) {
		return fmt.Errorf("%w: websocket close code %d", ErrMalformed, code)
	}
	if !utf8.Valid(p[2:]) {
		return ErrInvalidUTF8
	}
	return nil
}

// validCloseCode: the codes RFC 6455 and IANA's registry define
// (1000-1003, 1007-1014) and those for libraries and applications
// (3000-4999).
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// readWSPayload appends a fragment's n payload bytes to msg, unmasked. The
// caller has checked that msg stays within max.
func readWSPayload(r *bufio.Reader, msg []byte, n, max int, h wsHeader) ([]byte, error) {
	start, limit := len(msg), max
	if h.fin {
		limit = start + n
	}
	msg, err := readAppend(r, msg, n, limit)
	if err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	if h.masked {
		ws.Cipher(msg[start:], h.mask, 0)
	}
	return msg, nil
}

func unexpectedEOF(err error, got int) error {
	if err == io.EOF && got > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}
