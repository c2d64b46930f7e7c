package token_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/token"
)

// forge signs claims and header fields with method and key, as someone
// who writes tokens by hand would.
func forge(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tk.Header[k] = v
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor are valid claims for s1 with aud push and iss auth, changed
// by set (a nil value removes a claim).
func claimsFor(set map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "s1", "exp": time.Now().Add(time.Minute).Unix(), "aud": "push", "iss": "auth"}
	for k, v := range set {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// Tokens written by hand to get past the checks: each is refused, or
// accepted only as what it honestly is.
func TestForgedTokens(t *testing.T) {
	dir := t.TempDir()
	edPriv, edPub := edKeys(t)
	edPEM := pubPEM(t, edPub)
	write(t, filepath.Join(dir, "hs"), secret)
	write(t, filepath.Join(dir, "ed.pem"), edPEM)
	v, err := token.NewKeyFiles(dir, "", token.WithAudience("push"), token.WithIssuer("auth"))
	if err != nil {
		t.Fatal(err)
	}
	edKey, err := jwt.ParseEdPrivateKeyFromPEM(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	hs := func(header map[string]any, set map[string]any) string {
		return forge(t, jwt.SigningMethodHS256, secret, header, claimsFor(set))
	}
	kid := map[string]any{"kid": "hs"}
	now := time.Now()
	for _, tc := range []struct{ name, tok, wantErr string }{
		{"honest", hs(kid, nil), ""},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claimsFor(nil)), "signature is not valid"},
		{"HS256 keyed with the public key's PEM", forge(t, jwt.SigningMethodHS256, edPEM, map[string]any{"kid": "ed"}, claimsFor(nil)), "not a known HS256 key"},
		{"HS256 keyed with the public key's bytes", forge(t, jwt.SigningMethodHS256, []byte(edPub), map[string]any{"kid": "ed"}, claimsFor(nil)), "not a known HS256 key"},
		{"EdDSA with the kid of a secret", forge(t, jwt.SigningMethodEdDSA, edKey, kid, claimsFor(nil)), "not a known EdDSA key"},
		{"kid climbing out of the directory", hs(map[string]any{"kid": "../hs"}, nil), "not a known"},
		{"kid naming a path", hs(map[string]any{"kid": filepath.Join(dir, "hs")}, nil), "not a known"},
		{"kid with its .pem ending", forge(t, jwt.SigningMethodEdDSA, edKey, map[string]any{"kid": "ed.pem"}, claimsFor(nil)), "not a known"},
		{"kid of a megabyte", hs(map[string]any{"kid": strings.Repeat("k", 1<<20)}, nil), "not a known"},
		{"kid not a string", hs(map[string]any{"kid": 7}, nil), ""},
		{"aud as an array naming push", hs(kid, map[string]any{"aud": []string{"other", "push"}}), ""},
		{"aud as an array without push", hs(kid, map[string]any{"aud": []string{"other"}}), "audience"},
		{"aud missing", hs(kid, map[string]any{"aud": nil}), "audience"},
		{"aud not a string", hs(kid, map[string]any{"aud": 7}), "not valid"},
		{"iss another", hs(kid, map[string]any{"iss": "auth2"}), "issuer"},
		{"iss as an array", hs(kid, map[string]any{"iss": []string{"auth"}}), "not valid"},
		{"nbf past the leeway", hs(kid, map[string]any{"nbf": now.Add(2 * token.Leeway).Unix()}), "not valid yet"},
		{"exp missing", hs(kid, map[string]any{"exp": nil}), "no expiry"},
		{"exp a string of digits, read as its number", hs(kid, map[string]any{"exp": "9999999999"}), ""},
		{"exp a string of letters", hs(kid, map[string]any{"exp": "soon"}), "not valid"},
		{"exp past the leeway", hs(kid, map[string]any{"exp": now.Add(-2 * token.Leeway).Unix()}), "expired"},
		{"exp beyond int64 seconds", hs(kid, map[string]any{"exp": 1e300}), "expired"},
		{"exp -1e300", hs(kid, map[string]any{"exp": -1e300}), "expired"},
		{"sub missing", hs(kid, map[string]any{"sub": nil}), "subject"},
		{"sub not a session id", hs(kid, map[string]any{"sub": "a.b"}), "subject"},
		{"groups not strings", hs(kid, map[string]any{"groups": []int{1}}), "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.tok)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Verify: %v; want an error containing %q", err, tc.wantErr)
			case err != nil && len(err.Error()) > 300:
				t.Fatalf("error of %d bytes: it echoes the token", len(err.Error()))
			}
		})
	}
}

// Whatever exp a token carries, a token it accepts says until when, and
// that is its exp plus the leeway: never a zero time (no expiry) and never
// an overflowed one.
func TestExpClaimExtremes(t *testing.T) {
	v, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, exp := range []any{1e11, 253402300799, 253402300799.999, 9.2e18, 9.3e18, 1.8e19, json.Number("99999999999999999999999")} {
		tok := forge(t, jwt.SigningMethodHS256, secret, nil, jwt.MapClaims{"sub": "s1", "exp": exp})
		_, _, until, err := v.VerifyClaims(tok)
		if err != nil {
			continue
		}
		if until.IsZero() || until.Before(time.Now()) {
			t.Errorf("exp %v accepted until %v", exp, until)
		}
	}
}

// A key file that looks like PEM but does not decode as PEM (truncated
// mid-write, its END line lost in a copy) is refused: before, it became
// an HS256 secret made of the public key's text, and anyone holding the
// public key signed tokens with it.
func TestBrokenPEMIsNoSecret(t *testing.T) {
	_, edPub := edKeys(t)
	full := pubPEM(t, edPub)
	for name, b := range map[string][]byte{
		"truncated":   full[:len(full)-20],
		"no END line": full[:strings.Index(string(full), "-----END")],
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "ed.pem"), b)
			write(t, filepath.Join(dir, "hs"), secret)
			v, err := token.NewKeyFiles(dir, "")
			if err == nil {
				forged := forge(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(b))), map[string]any{"kid": "ed"}, claimsFor(nil))
				_, ferr := v.Verify(forged)
				t.Fatalf("key set accepted (a token signed with the file's text: %v)", ferr)
			}
			if !strings.Contains(err.Error(), `"ed"`) {
				t.Fatalf("error %v; want it to name the file's key id", err)
			}
		})
	}
}

// One kid names one key: the same id twice (in a JWKS file, in the
// directory as "k" and "k.pem", or in both) is refused, not settled by
// which is read last.
func TestDuplicateKeyIDsRefused(t *testing.T) {
	_, edPub := edKeys(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	oct := map[string]string{"kty": "oct", "kid": "k", "k": b64(secret)}
	rsaJWK := map[string]string{"kty": "RSA", "kid": "k", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())}
	jwks := func(keys ...map[string]string) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	for name, files := range map[string]map[string][]byte{
		"jwks twice":          {"jwks.json": jwks(oct, rsaJWK)},
		"k and k.pem":         {"dir/k": secret, "dir/k.pem": pubPEM(t, edPub)},
		"directory and jwks":  {"dir/k": secret2, "jwks.json": jwks(oct)},
		"directory only once": nil,
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir, path := filepath.Join(root, "dir"), filepath.Join(root, "jwks.json")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "other"), secret2)
			write(t, path, jwks())
			for p, b := range files {
				write(t, filepath.Join(root, p), b)
			}
			_, err := token.NewKeyFiles(dir, path)
			switch {
			case files == nil && err != nil:
				t.Fatalf("distinct ids refused: %v", err)
			case files != nil && (err == nil || !strings.Contains(err.Error(), `"k"`)):
				t.Fatalf("NewKeyFiles: %v; want the duplicate id k refused", err)
			}
		})
	}
}

// A token without a kid is checked with each key of its method, but with
// no more than token.MaxKeysWithoutKid: anyone may present one, and each
// key tried is a signature verification (BenchmarkVerifyWithoutKid: with
// 100 RS256 keys, 2.7 ms a token before).
func TestTokenWithoutKidTriesFewKeys(t *testing.T) {
	dir := t.TempDir()
	var last []byte
	for i := range token.MaxKeysWithoutKid {
		last = []byte(fmt.Sprintf("secret number %d of at least 32 bytes", i))
		write(t, filepath.Join(dir, fmt.Sprintf("k%d", i)), last)
	}
	v, err := token.NewKeyFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, mint(t, last, token.MintOptions{}), "")
	write(t, filepath.Join(dir, "k9"), []byte("one key too many, of 32 bytes or more"))
	if _, err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, mint(t, last, token.MintOptions{}), "no key id (kid)")
	wantVerify(t, v, mint(t, last, token.MintOptions{KeyID: fmt.Sprintf("k%d", token.MaxKeysWithoutKid-1)}), "")
}

// A key file or JWKS file larger than token.MaxKeyFile is refused, not
// read whole at every reload; a JWKS of thousands of keys within it loads.
func TestKeyFileSizeBounded(t *testing.T) {
	root := t.TempDir()
	big := filepath.Join(root, "big.json")
	write(t, big, append([]byte(`{"keys": [], "pad": "`), append(bytes.Repeat([]byte{'x'}, token.MaxKeyFile), '"', '}')...))
	if _, err := token.NewKeyFiles("", big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a JWKS file over the limit: %v", err)
	}
	keys := make([]map[string]string, 3000)
	for i := range keys {
		keys[i] = map[string]string{"kty": "oct", "kid": fmt.Sprintf("k%d", i), "k": b64(secret)}
	}
	many, _ := json.Marshal(map[string]any{"keys": keys})
	path := filepath.Join(root, "many.json")
	write(t, path, many)
	v, err := token.NewKeyFiles("", path)
	if err != nil {
		t.Fatalf("3000 keys in %d bytes: %v", len(many), err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k2999"}), "")
	wantVerify(t, v, mint(t, secret, token.MintOptions{}), "no key id (kid)")
}
