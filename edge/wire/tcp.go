package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// LengthSize is the size of the TCP length prefix.
const LengthSize = 4

// AppendTCP appends f with its 4-byte big-endian length prefix.
func AppendTCP(dst []byte, f *Frame) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(f.Len()))
	return appendValid(dst, f), nil
}

// ReadTCP reads one length-prefixed frame body from r into buf, growing it
// when it is too small, and returns the body. A length above max gives an
// error wrapping [ErrTooLarge] before anything else is read: the stream cannot
// be resynchronised after it, so the caller must close the connection. A
// length below [HeaderLen] wraps [ErrMalformed]. io.EOF means the peer closed
// between frames; io.ErrUnexpectedEOF, in the middle of one. Memory grows
// with the body bytes that arrive, not with the length announced: a peer
// that sends only a prefix costs a few KiB, not the frame size.
func ReadTCP(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	hdr, err := r.Peek(LengthSize)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	if n < HeaderLen {
		return nil, fmt.Errorf("%w: length %d, want at least %d", ErrMalformed, n, HeaderLen)
	}
	_, _ = r.Discard(LengthSize)
	body, err := readAppend(r, buf[:0], int(n), int(n))
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}
