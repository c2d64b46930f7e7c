package wire

import (
	"errors"
	"fmt"

	"github.com/pushfabric/pushfabric/push"
)

// Version is the frame format version this package reads and writes.
const Version = 1

// Type says what a frame is for.
type Type uint8

// Frame types. The direction is the one the protocol allows; a frame of a
// type that may not travel in that direction is a protocol error.
const (
	TypePush     Type = 1  // server → client: a push (ID = push id, Priority, ContentType, Payload)
	TypeRequest  Type = 2  // client → server: a request (ID = request id, Name = method)
	TypeResponse Type = 3  // server → client: one response frame for request ID
	TypeEnd      Type = 4  // server → client: request ID has ended without error
	TypeError    Type = 5  // server → client: request ID (empty: the connection) failed; Name = code, Payload = message
	TypeClose    Type = 6  // either way: the sender is closing; Name = close reason, Payload = message
	TypePing     Type = 7  // either way: answer with a pong carrying the same payload
	TypePong     Type = 8  // either way: answer to a ping
	TypeHello    Type = 9  // client → server, first frame on TCP: Payload = token, ID = session (development mode)
	TypeWelcome  Type = 10 // server → client, first frame: the session is live; ID = session, Name = node
	TypeCancel   Type = 11 // client → server: stop request ID
	TypeReceipt  Type = 12 // client → server: the application has the pushes whose ids Payload lists (see ReceiptIDs)
	TypeRefresh  Type = 13 // client → server: Payload = a new token for the same session, moving the connection's expiry
	maxType           = TypeRefresh
)

var typeNames = [...]string{
	TypePush: "push", TypeRequest: "request", TypeResponse: "response",
	TypeEnd: "end", TypeError: "error", TypeClose: "close", TypePing: "ping",
	TypePong: "pong", TypeHello: "hello", TypeWelcome: "welcome", TypeCancel: "cancel",
	TypeReceipt: "receipt", TypeRefresh: "refresh",
}

func (t Type) String() string {
	if t == 0 || t > maxType {
		return fmt.Sprintf("type(%d)", uint8(t))
	}
	return typeNames[t]
}

// Frame is one protocol frame: exactly what travels on the wire. Payload
// is carried byte for byte.
type Frame struct {
	Type     Type
	Priority push.Priority
	// WantsReceipt, on a push frame only, asks the client to confirm the
	// push id with a receipt frame once the application has processed it
	// (the producer asked Push-Ack: received).
	WantsReceipt bool
	ID           string // push id, or request id for request-related frames
	Name         string // method (request), error code (error), close reason (close), node (welcome)
	ContentType  string
	Payload      []byte
}

// Limits of the format.
// The flags byte: the priority in bits 0-1, FlagReceipt in bit 2, the
// other bits 0.
const (
	priorityMask = 0x03
	// FlagReceipt is Frame.WantsReceipt on the wire.
	FlagReceipt = 0x04
)

const (
	// HeaderLen is the size of a frame with empty strings and payload.
	HeaderLen = 6
	// MaxFieldLen is the longest ID, Name or ContentType.
	MaxFieldLen = push.MaxFieldLen
	// DefaultMaxFrameSize is the frame size limit both ends use unless
	// configured otherwise.
	DefaultMaxFrameSize = 1 << 20
)

// Errors reported by the decoders and encoders. Errors returned by this
// package wrap one of them with details.
var (
	// ErrMalformed: the bytes are not a valid frame.
	ErrMalformed = errors.New("malformed frame")
	// ErrTooLarge: the frame is larger than the configured maximum.
	ErrTooLarge = errors.New("frame too large")
)

// Len is the encoded size of f, without any transport framing.
func (f *Frame) Len() int {
	return HeaderLen + len(f.ID) + len(f.Name) + len(f.ContentType) + len(f.Payload)
}

// Validate reports whether f can be encoded.
func (f *Frame) Validate() error {
	switch {
	case f.Type == 0 || f.Type > maxType:
		return fmt.Errorf("%w: unknown type %d", ErrMalformed, f.Type)
	case f.Priority > push.Low:
		return fmt.Errorf("%w: unknown priority %d", ErrMalformed, f.Priority)
	case f.WantsReceipt && f.Type != TypePush:
		return fmt.Errorf("%w: a %s frame asking for a receipt", ErrMalformed, f.Type)
	case len(f.ID) > MaxFieldLen:
		return fmt.Errorf("%w: id longer than %d bytes", ErrMalformed, MaxFieldLen)
	case len(f.Name) > MaxFieldLen:
		return fmt.Errorf("%w: name longer than %d bytes", ErrMalformed, MaxFieldLen)
	case len(f.ContentType) > MaxFieldLen:
		return fmt.Errorf("%w: content type longer than %d bytes", ErrMalformed, MaxFieldLen)
	}
	return nil
}
