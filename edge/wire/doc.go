// Package wire is the pushfabric client protocol: one versioned frame format
// shared by the WebSocket and framed-TCP transports.
//
// A frame is a small fixed header, three short strings and the payload bytes
// exactly as the producer published them:
//
//	offset  size  field
//	0       1     version (1)
//	1       1     type (see [Type])
//	2       1     flags: bits 0-1 priority (0 high, 1 low), other bits 0
//	3       1     length of ID, then ID
//	.       1     length of Name, then Name
//	.       1     length of ContentType, then ContentType
//	.       rest  payload
//
// On WebSocket every binary message is one frame. On TCP every frame is
// preceded by its length as a 4-byte big-endian integer, bounded by a
// maximum that both ends enforce. docs/protocol.md describes the protocol for
// client authors; this package is its reference implementation and is used
// by the edge server and the Go client alike.
//
// Decoders here read outside input: they never panic, never allocate more
// than the stated maximum, grow their buffers with the bytes that arrive
// rather than the lengths a peer announces, and report malformed input as
// errors matching [ErrMalformed] or [ErrTooLarge].
//
// The package imports the vocabulary (push) and gobwas/ws only: never the
// edge server, the registry or NATS, so the Go client links none of them
// (tests/imports_test.go).
package wire
