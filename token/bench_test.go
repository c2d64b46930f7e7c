package token_test

import (
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/token"
)

// BenchmarkVerify is the CPU one token check costs, by algorithm: what a
// connect or a refresh frame makes the edge spend.
func BenchmarkVerify(b *testing.B) {
	for alg, kp := range keyPairs(b) {
		tok, err := token.Mint(kp.sign, "s1", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := kp.auth.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
