package wire

import (
	"bufio"
	"bytes"
	"testing"
)

var benchFrame = Frame{Type: TypePush, ID: "0123456789abcdefghij", ContentType: "application/json", Payload: make([]byte, 128)}

func BenchmarkAppendWS(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendWS(buf[:0], &benchFrame)
	}
}

func BenchmarkAppendTCP(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendTCP(buf[:0], &benchFrame)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := AppendFrame(nil, &benchFrame)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadWS reads masked client messages into a reused buffer.
func BenchmarkReadWS(b *testing.B) {
	one, _ := AppendWSMasked(nil, &benchFrame, [4]byte{1, 2, 3, 4})
	benchRead(b, one, func(r *bufio.Reader, buf []byte) ([]byte, error) {
		return ReadWS(r, buf, DefaultMaxFrameSize, true, ignoreControl)
	})
}

// BenchmarkReadTCP reads small client frames into a reused buffer.
func BenchmarkReadTCP(b *testing.B) {
	one, _ := AppendTCP(nil, &benchFrame)
	benchRead(b, one, func(r *bufio.Reader, buf []byte) ([]byte, error) { return ReadTCP(r, buf, DefaultMaxFrameSize) })
}

// BenchmarkReadFresh reads small frames the way the edge does: each into a
// buffer of its own.
func BenchmarkReadFresh(b *testing.B) {
	tcp, _ := AppendTCP(nil, &benchFrame)
	ws, _ := AppendWSMasked(nil, &benchFrame, [4]byte{1, 2, 3, 4})
	b.Run("tcp", func(b *testing.B) {
		benchRead(b, tcp, func(r *bufio.Reader, _ []byte) ([]byte, error) { return ReadTCP(r, nil, DefaultMaxFrameSize) })
	})
	b.Run("ws", func(b *testing.B) {
		benchRead(b, ws, func(r *bufio.Reader, _ []byte) ([]byte, error) {
			return ReadWS(r, nil, DefaultMaxFrameSize, true, ignoreControl)
		})
	})
}

// BenchmarkReadLarge reads 256 KiB frames, each into a buffer of its own:
// the case where a buffer grows as the bytes arrive.
func BenchmarkReadLarge(b *testing.B) {
	f := benchFrame
	f.Payload = make([]byte, 256<<10)
	tcp, _ := AppendTCP(nil, &f)
	ws, _ := AppendWSMasked(nil, &f, [4]byte{1, 2, 3, 4})
	b.Run("tcp", func(b *testing.B) {
		benchRead(b, tcp, func(r *bufio.Reader, _ []byte) ([]byte, error) { return ReadTCP(r, nil, DefaultMaxFrameSize) })
	})
	b.Run("ws", func(b *testing.B) {
		benchRead(b, ws, func(r *bufio.Reader, _ []byte) ([]byte, error) {
			return ReadWS(r, nil, DefaultMaxFrameSize, true, ignoreControl)
		})
	})
}

// benchRead reads copies of one encoded frame with read, over and over.
func benchRead(b *testing.B, one []byte, read func(*bufio.Reader, []byte) ([]byte, error)) {
	const copies = 64
	stream := bytes.Repeat(one, copies)
	r := bufio.NewReader(bytes.NewReader(stream))
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%copies == 0 {
			r.Reset(bytes.NewReader(stream))
		}
		if _, err := read(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}
