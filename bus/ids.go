package bus

import "github.com/pushfabric/pushfabric/internal/strblock"

// idSource makes push ids for one goroutine (strblock.IDs), 128 to a
// block: an id costs no allocation of its own, and a block stays in memory
// while any of its ids does.
type idSource struct {
	ids   strblock.IDs
	block strblock.Block
}

const (
	idLen       = strblock.IDLen
	idsPerBlock = 128
)

func newIDSource() idSource {
	return idSource{ids: strblock.NewIDs(), block: strblock.Block{Size: idsPerBlock * idLen}}
}

func (s *idSource) next() string { return s.ids.Next(&s.block) }
