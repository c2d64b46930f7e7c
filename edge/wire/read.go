package wire

import "io"

// firstChunk is the most memory a read commits to a frame before its bytes
// arrive. Frames up to this size get a buffer of exactly their size at once.
const firstChunk = 4 << 10

// readAppend appends exactly n bytes read from r to buf and returns the
// extended slice. A length is only what the peer announced, so memory
// follows the bytes that actually arrive: when buf is full it grows to
// twice what it holds, by at least firstChunk, never past limit. While
// bytes are awaited the buffer is therefore at most firstChunk or twice
// what has arrived, whichever is larger.
//
// limit is the most buf will have to hold, at least len(buf)+n: the end of
// this read when it ends a frame, the message limit when more fragments
// may follow (so that many small fragments grow the buffer geometrically,
// not one fragment at a time). On error the bytes read so far are returned
// with it.
func readAppend(r io.Reader, buf []byte, n, limit int) ([]byte, error) {
	end := len(buf) + n
	for len(buf) < end {
		if len(buf) == cap(buf) {
			buf = grow(buf, limit)
		}
		got, err := io.ReadFull(r, buf[len(buf):min(cap(buf), end)])
		buf = buf[:len(buf)+got]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// grow returns a copy of buf with twice its length in capacity, by at
// least firstChunk, at most limit.
func grow(buf []byte, limit int) []byte {
	grown := make([]byte, len(buf), min(limit, len(buf)+max(len(buf), firstChunk)))
	copy(grown, buf)
	return grown
}
