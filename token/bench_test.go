package token_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

// BenchmarkVerifyWithoutKid is a token without a kid against a key set of
// many RS256 keys: it is checked with each in turn, so its cost grows with
// the set, up to token.MaxKeysWithoutKid keys; past them it is refused
// unchecked.
func BenchmarkVerifyWithoutKid(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			v, tok := manyRSAKeys(b, n)
			for b.Loop() {
				if _, err := v.Verify(tok); err == nil {
					b.Fatal("a token no key signed was accepted")
				}
			}
		})
	}
}

// manyRSAKeys is a verifier of a JWKS file of n RS256 keys, and a
// kid-less RS256 token none of them signed.
func manyRSAKeys(b *testing.B, n int) (*token.Verifier, string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]map[string]string, n)
	for i := range keys {
		keys[i] = map[string]string{"kty": "RSA", "kid": "r" + strconv.Itoa(i), "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	}
	js, _ := json.Marshal(map[string]any{"keys": keys})
	path := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		b.Fatal(err)
	}
	v, err := token.NewKeyFiles("", path)
	if err != nil {
		b.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "s1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(other)
	if err != nil {
		b.Fatal(err)
	}
	return v, tok
}
