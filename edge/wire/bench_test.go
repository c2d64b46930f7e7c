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

// BenchmarkReadWS reads masked client messages, as the edge does.
func BenchmarkReadWS(b *testing.B) {
	one, _ := AppendWSMasked(nil, &benchFrame, [4]byte{1, 2, 3, 4})
	stream := bytes.Repeat(one, 1000)
	r := bufio.NewReader(bytes.NewReader(stream))
	buf := make([]byte, 0, 512)
	ignore := func(byte, []byte) error { return nil }
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			r.Reset(bytes.NewReader(stream))
		}
		if _, err := ReadWS(r, buf, DefaultMaxFrameSize, true, ignore); err != nil {
			b.Fatal(err)
		}
	}
}
