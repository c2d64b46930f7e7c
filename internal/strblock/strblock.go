// Package strblock builds short strings (push ids, subjects, header
// values) in shared blocks, so that a string costs no allocation of its
// own: a block is one allocation for many strings. A block stays in memory
// while any string of it does, so a Block suits strings that live about as
// long as each other (the pushes of one publisher, one queue).
//
// A Block is a strings.Builder that is never reset while its strings live:
// each string is a slice of what the builder holds, and the builder only
// appends, so a string once made never changes.
package strblock

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nuid"
)

// Block builds strings one after another into blocks of Size bytes. The
// zero value uses DefaultSize. Not safe for concurrent use.
type Block struct {
	Size  int // bytes a block holds; 0: DefaultSize
	sb    strings.Builder
	start int
}

// DefaultSize is the block size of a zero Block.
const DefaultSize = 4096

// Start begins a string of at most n bytes (more works, at the cost of an
// allocation), in a new block when the current one has no room for n.
func (b *Block) Start(n int) *Block {
	if b.sb.Cap()-b.sb.Len() < n {
		size := b.Size
		if size <= 0 {
			size = DefaultSize
		}
		b.sb = strings.Builder{}
		b.sb.Grow(max(size, n))
	}
	b.start = b.sb.Len()
	return b
}

// String ends the string begun by Start and returns it.
func (b *Block) String() string { return b.sb.String()[b.start:] }

// Add appends s to the string being built.
func (b *Block) Add(s string) *Block {
	b.sb.WriteString(s)
	return b
}

// AddByte appends c.
func (b *Block) AddByte(c byte) *Block {
	b.sb.WriteByte(c)
	return b
}

// Make is a string of p's bytes, made in b: Start, AddBytes and String.
func (b *Block) Make(p []byte) string { return b.Start(len(p)).AddBytes(p).String() }

// AddBytes appends p.
func (b *Block) AddBytes(p []byte) *Block {
	b.sb.Write(p)
	return b
}

// AddUint appends v in base.
func (b *Block) AddUint(v uint64, base int) *Block {
	var buf [64]byte
	b.sb.Write(strconv.AppendUint(buf[:0], v, base))
	return b
}

// AddTime appends t in layout.
func (b *Block) AddTime(t time.Time, layout string) *Block {
	var buf [64]byte
	b.sb.Write(t.AppendFormat(buf[:0], layout))
	return b
}

// IDs makes unique ids in the NUID format (22 characters of [0-9A-Za-z]: a
// random 12-character prefix and a 10-character sequence), each source with
// a prefix of its own. Not safe for concurrent use.
type IDs struct {
	prefix string
	seq    [idSeqLen]byte // the next id's sequence, in base 62
}

// IDLen is the length of an id.
const IDLen = 22

const (
	idSeqLen = 10
	idDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// idNext maps each digit of idDigits to the one after it.
var idNext = func() (next [256]byte) {
	for i := 0; i+1 < len(idDigits); i++ {
		next[idDigits[i]] = idDigits[i+1]
	}
	return next
}()

// NewIDs returns a source with a fresh random prefix.
func NewIDs() IDs {
	g := IDs{prefix: nuid.New().Next()[:IDLen-idSeqLen]}
	for i := range g.seq {
		g.seq[i] = idDigits[0]
	}
	return g
}

// Next makes the next id in b.
func (g *IDs) Next(b *Block) string {
	id := b.Start(IDLen).Add(g.prefix).AddBytes(g.seq[:]).String()
	for i := idSeqLen - 1; i >= 0; i-- { // add one, carrying
		if g.seq[i] != idDigits[len(idDigits)-1] {
			g.seq[i] = idNext[g.seq[i]]
			break
		}
		g.seq[i] = idDigits[0]
	}
	return id
}

// Stamper writes times in UTC as RFC 3339 with nanoseconds
// (time.RFC3339Nano, push.FormatTime's format) in a Block, faster than
// AddTime: what comes before the fraction of a second is made once a
// second. For times one after another (the send times of pushes). Not safe
// for concurrent use.
type Stamper struct {
	sec   int64  // the second whole is for
	whole string // "2006-01-02T15:04:05" of it, in UTC
}

// Stamp writes t in b and returns it.
func (s *Stamper) Stamp(b *Block, t time.Time) string {
	if sec := t.Unix(); sec != s.sec || s.whole == "" {
		s.sec, s.whole = sec, t.UTC().Format("2006-01-02T15:04:05")
	}
	var buf [40]byte
	n := copy(buf[:], s.whole)
	if ns := t.Nanosecond(); ns != 0 { // RFC3339Nano: the fraction without its trailing zeros, none if 0
		buf[n] = '.'
		for i := 9; i >= 1; i-- {
			buf[n+i] = byte('0' + ns%10)
			ns /= 10
		}
		for n += 10; buf[n-1] == '0'; n-- {
		}
	}
	buf[n] = 'Z'
	return b.Make(buf[:n+1])
}
