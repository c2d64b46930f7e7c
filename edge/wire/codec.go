package wire

import (
	"fmt"

	"github.com/pushfabric/pushfabric/push"
)

// AppendFrame appends the encoding of f to dst. It fails only when f does
// not pass [Frame.Validate]; dst is then returned unchanged.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	return appendValid(dst, f), nil
}

// appendValid appends a frame already known to be valid.
func appendValid(dst []byte, f *Frame) []byte {
	flags := byte(f.Priority)
	if f.WantsReceipt {
		flags |= FlagReceipt
	}
	dst = append(dst, Version, byte(f.Type), flags)
	dst = append(append(dst, byte(len(f.ID))), f.ID...)
	dst = append(append(dst, byte(len(f.Name))), f.Name...)
	dst = append(append(dst, byte(len(f.ContentType))), f.ContentType...)
	return append(dst, f.Payload...)
}

// Decode parses one frame. The returned Payload aliases b; the strings are
// copies. Any input that is not a valid frame gives an error wrapping
// [ErrMalformed].
func Decode(b []byte) (Frame, error) {
	var f Frame
	if len(b) < HeaderLen {
		return f, fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(b), HeaderLen)
	}
	if b[0] != Version {
		return f, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], Version)
	}
	f.Type = Type(b[1])
	if f.Type == 0 || f.Type > maxType {
		return f, fmt.Errorf("%w: unknown type %d", ErrMalformed, b[1])
	}
	if flags := b[2]; flags&^(priorityMask|FlagReceipt) != 0 || flags&priorityMask > byte(push.Low) ||
		flags&FlagReceipt != 0 && f.Type != TypePush {
		return f, fmt.Errorf("%w: flags %#x on a %s frame", ErrMalformed, b[2], f.Type)
	}
	f.Priority, f.WantsReceipt = push.Priority(b[2]&priorityMask), b[2]&FlagReceipt != 0
	rest := b[3:]
	var ok bool
	if f.ID, rest, ok = cutField(rest); !ok {
		return f, fmt.Errorf("%w: id runs past the end", ErrMalformed)
	}
	if f.Name, rest, ok = cutField(rest); !ok {
		return f, fmt.Errorf("%w: name runs past the end", ErrMalformed)
	}
	if f.ContentType, rest, ok = cutField(rest); !ok {
		return f, fmt.Errorf("%w: content type runs past the end", ErrMalformed)
	}
	if len(rest) > 0 {
		f.Payload = rest
	}
	return f, nil
}

// cutField splits a length-prefixed string off the front of b.
func cutField(b []byte) (string, []byte, bool) {
	if len(b) < 1 {
		return "", b, false
	}
	n := int(b[0])
	if len(b) < 1+n {
		return "", b, false
	}
	return string(b[1 : 1+n]), b[1+n:], true
}
