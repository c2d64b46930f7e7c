package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadLines: pushctl push --lines's reader splits any input into its
// lines, without their ends, each at most the limit or refused as too long,
// and reaches the end: the lines it returned and refused are the input's,
// with their \r\n or \n ends cut (a last line's \r too; a \r alone there
// is no line).
func FuzzReadLines(f *testing.F) {
	for _, s := range []string{"a\nb\n", "a\r\nb", "", "\n\n", "0123456789abcdef\nx", "\r\r\n", "x\r"} {
		f.Add([]byte(s), uint8(8))
	}
	f.Fuzz(func(t *testing.T, in []byte, limit uint8) {
		r := bufio.NewReaderSize(bytes.NewReader(in), 16) // the smallest: long lines come in chunks
		var lines [][]byte
		for range len(in) + 2 {
			line, err := readLine(r, int(limit))
			if errors.Is(err, io.EOF) && len(line) == 0 {
				break
			}
			if errors.Is(err, errLongLine) {
				line = nil
			} else if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if len(line) > int(limit) || bytes.ContainsRune(line, '\n') {
				t.Fatalf("line %q of limit %d", line, limit)
			}
			lines = append(lines, line)
		}
		want := bytes.Split(bytes.TrimSuffix(in, []byte("\n")), []byte("\n"))
		if last := len(want) - 1; len(bytes.TrimSuffix(want[last], []byte("\r"))) == 0 && !bytes.HasSuffix(in, []byte("\n")) {
			want = want[:last] // an end with no line after it (nothing, or a \r alone)
		}
		if len(lines) != len(want) {
			t.Fatalf("%d lines from %q; want %d", len(lines), in, len(want))
		}
		for i, w := range want {
			w = bytes.TrimSuffix(w, []byte("\r"))
			if len(w) > int(limit) {
				if lines[i] != nil {
					t.Fatalf("line %d %q: over the limit %d, not refused", i, w, limit)
				}
				continue
			}
			if !bytes.Equal(lines[i], w) {
				t.Fatalf("line %d: %q; want %q", i, lines[i], w)
			}
		}
	})
}
