package bus

import "github.com/nats-io/nuid"

// idSource makes push ids for one goroutine, in the NUID format (22
// characters of [0-9A-Za-z]: a random 12-character prefix and a 10-character
// sequence). A block of ids is one string and each id a slice of it, so an
// id costs no allocation of its own; a block stays in memory while any of
// its ids does.
type idSource struct {
	prefix string // random, from a new NUID
	seq    uint64
	block  string
}

const (
	idLen       = 22
	idSeqLen    = 10
	idsPerBlock = 128
	idDigits    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

func newIDSource() idSource { return idSource{prefix: nuid.New().Next()[:idLen-idSeqLen]} }

func (s *idSource) next() string {
	if len(s.block) < idLen {
		b := make([]byte, 0, idsPerBlock*idLen)
		for range idsPerBlock {
			b = append(b, s.prefix...)
			var seq [idSeqLen]byte
			for i, v := idSeqLen-1, s.seq; i >= 0; i, v = i-1, v/62 {
				seq[i] = idDigits[v%62]
			}
			b = append(b, seq[:]...)
			s.seq++
		}
		s.block = string(b)
	}
	id := s.block[:idLen]
	s.block = s.block[idLen:]
	return id
}
