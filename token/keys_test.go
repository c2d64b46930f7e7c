package token_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/token"
)

var secret2 = []byte("fedcba9876543210fedcba9876543210")

// edKeys makes an Ed25519 pair: the PKCS#8 PEM private key a minter signs
// with, and the public key.
func edKeys(t *testing.T) ([]byte, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	return pemBlock(t, "PRIVATE KEY", der, err), pub
}

func pubPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	return pemBlock(t, "PUBLIC KEY", der, err)
}

func mint(t *testing.T, key []byte, o token.MintOptions) string {
	t.Helper()
	tok, err := token.MintWith(key, "s1", time.Minute, o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantVerify(t *testing.T, v *token.Verifier, tok, wantErr string) {
	t.Helper()
	_, err := v.Verify(tok)
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("Verify: %v; want it accepted", err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("Verify: %v; want an error containing %q", err, wantErr)
	}
}

// A key directory holds secrets and public keys side by side; a token is
// checked by its kid's key, one without a kid by each key of its method.
func TestKeyDirectoryChoosesByKid(t *testing.T) {
	dir := t.TempDir()
	edPriv, edPub := edKeys(t)
	write(t, filepath.Join(dir, "hs-a"), append(secret, '\n'))
	write(t, filepath.Join(dir, "hs-b"), secret2)
	write(t, filepath.Join(dir, "ed.pem"), pubPEM(t, edPub))
	write(t, filepath.Join(dir, ".hidden"), []byte("not a key"))
	v, err := token.NewKeyFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "hs-a"}), "")
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "hs-b"}), "")
	wantVerify(t, v, mint(t, edPriv, token.MintOptions{KeyID: "ed"}), "")
	wantVerify(t, v, mint(t, secret2, token.MintOptions{}), "")
	wantVerify(t, v, mint(t, edPriv, token.MintOptions{}), "")
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "hs-b"}), "signature is not valid")
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "gone"}), `kid) "gone" is not a known HS256 key`)
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "ed"}), "is not a known HS256 key")
	wantVerify(t, v, mint(t, []byte("an entirely different secret of 32+ bytes"), token.MintOptions{}), "signature is not valid")
}

// A token cannot choose how its signature is read: HS256 "signed" with the
// bytes of a public key the verifier holds is refused.
func TestKeyDirectoryRefusesAlgorithmConfusion(t *testing.T) {
	dir := t.TempDir()
	_, edPub := edKeys(t)
	pub := pubPEM(t, edPub)
	write(t, filepath.Join(dir, "ed.pem"), pub)
	v, err := token.NewKeyFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "s1", "exp": time.Now().Add(time.Minute).Unix(), "kid": "ed"}).SignedString(pub)
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, forged, "no key checks")
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// A JWKS file's RSA, OKP and oct keys check tokens by kid; others are
// skipped.
func TestJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPriv := pemBlock(t, "PRIVATE KEY", rsaDER, err)
	edPriv, edPub := edKeys(t)
	set := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "OKP", "kid": "e1", "crv": "Ed25519", "x": b64(edPub)},
		{"kty": "oct", "kid": "h1", "k": b64(secret)},
		{"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
		{"kty": "oct", "kid": "enc", "use": "enc", "k": b64(secret2)},
	}}
	b, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	write(t, path, b)
	v, err := token.NewKeyFiles("", path)
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, mint(t, rsaPriv, token.MintOptions{KeyID: "r1"}), "")
	wantVerify(t, v, mint(t, edPriv, token.MintOptions{KeyID: "e1"}), "")
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "h1"}), "")
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "enc"}), "not a known")

	b, _ = json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "oct", "kid": "h2", "k": b64(secret2)}}})
	write(t, path, b)
	if changed, err := v.Reload(); !changed || err != nil {
		t.Fatalf("Reload of a rewritten JWKS file: %v, %v", changed, err)
	}
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "h2"}), "")
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "h1"}), "not a known")
	write(t, path, []byte(`{"keys": [`))
	if _, err := v.Reload(); err == nil || !strings.Contains(err.Error(), "jwks") {
		t.Fatalf("Reload of a truncated JWKS file: %v", err)
	}
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "h2"}), "")
}

// Keys change without a restart: Reload picks up a new key and drops a
// removed one; a broken set keeps the keys in use, and is reported once.
func TestReloadRotatesAndKeepsOldOnFailure(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "k1"), secret)
	v, err := token.NewKeyFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := v.Reload(); changed || err != nil {
		t.Fatalf("Reload of unchanged files: %v, %v", changed, err)
	}
	write(t, filepath.Join(dir, "k2"), secret2)
	if changed, err := v.Reload(); !changed || err != nil {
		t.Fatalf("Reload after adding k2: %v, %v", changed, err)
	}
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "k2"}), "")
	if err := os.Remove(filepath.Join(dir, "k1")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "k3"), []byte("short"))
	if changed, err := v.Reload(); changed || err == nil || !strings.Contains(err.Error(), `"k3"`) {
		t.Fatalf("Reload of a broken set: %v, %v; want an error naming k3", changed, err)
	}
	if _, err := v.Reload(); err != nil {
		t.Fatalf("Reload of the same broken set again: %v; want it reported once", err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k1"}), "")
	if err := os.Remove(filepath.Join(dir, "k3")); err != nil {
		t.Fatal(err)
	}
	if changed, err := v.Reload(); !changed || err != nil {
		t.Fatalf("Reload after the fix: %v, %v", changed, err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k1"}), "not a known")
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "k2"}), "")
}

func TestNewKeyFilesRefusesEmpty(t *testing.T) {
	if _, err := token.NewKeyFiles(t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := token.NewKeyFiles("", ""); err == nil {
		t.Error("neither a directory nor a JWKS file: accepted")
	}
}

// aud and iss are checked when asked for; nbf always, with the leeway.
func TestAudienceIssuerNotBefore(t *testing.T) {
	v, err := token.NewHS256(secret, token.WithAudience("push"), token.WithIssuer("https://auth.example"))
	if err != nil {
		t.Fatal(err)
	}
	good := token.MintOptions{Audience: "push", Issuer: "https://auth.example"}
	wantVerify(t, v, mint(t, secret, good), "")
	wantVerify(t, v, mint(t, secret, token.MintOptions{Issuer: good.Issuer}), "audience")
	wantVerify(t, v, mint(t, secret, token.MintOptions{Audience: "other", Issuer: good.Issuer}), "audience")
	wantVerify(t, v, mint(t, secret, token.MintOptions{Audience: "push", Issuer: "https://evil.example"}), "issuer")
	later := good
	later.NotBefore = time.Now().Add(time.Minute)
	wantVerify(t, v, mint(t, secret, later), "not valid yet")
	soon := good
	soon.NotBefore = time.Now().Add(token.Leeway / 2)
	wantVerify(t, v, mint(t, secret, soon), "")
	plain, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, plain, mint(t, secret, token.MintOptions{Audience: "any"}), "")
}

// VerifyClaims says until when the token is accepted: exp plus the
// leeway.
func TestVerifyClaimsUntil(t *testing.T) {
	v, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.Mint(secret, "s1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var claims token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		t.Fatal(err)
	}
	session, _, until, err := v.VerifyClaims(tok)
	if err != nil || session != "s1" {
		t.Fatalf("VerifyClaims: %q, %v", session, err)
	}
	if want := claims.ExpiresAt.Add(token.Leeway); !until.Equal(want) {
		t.Errorf("until %v; want exp+Leeway %v", until, want)
	}
}

// A key directory mounted from a Kubernetes ConfigMap or Secret is a set
// of links into a hidden timestamped directory (k -> ..data/k, ..data ->
// ..2026_12_01…) that the kubelet swaps in one rename: Reload reads the
// keys through the links, skips the hidden entries, and takes the new set
// once the swap is done.
func TestReloadThroughAConfigMapMount(t *testing.T) {
	dir := t.TempDir()
	mount := func(gen string, keys map[string][]byte) {
		t.Helper()
		data := filepath.Join(dir, "..2026_12_01_"+gen)
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		for id, b := range keys {
			write(t, filepath.Join(data, id), b)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(data), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for id := range keys {
			link := filepath.Join(dir, id)
			if _, err := os.Lstat(link); err == nil {
				continue
			}
			if err := os.Symlink(filepath.Join("..data", id), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	mount("a", map[string][]byte{"k1": secret})
	v, err := token.NewKeyFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k1"}), "")

	// The kubelet's update: a new generation with k1 and k2, swapped in.
	mount("b", map[string][]byte{"k1": secret, "k2": secret2})
	if changed, err := v.Reload(); !changed || err != nil {
		t.Fatalf("Reload after the ConfigMap gained k2: %v, %v", changed, err)
	}
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "k2"}), "")
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k1"}), "")

	// k1 removed from the ConfigMap: its link dangles until the kubelet
	// removes it; the key is gone from then on, with no error.
	mount("c", map[string][]byte{"k2": secret2})
	if changed, err := v.Reload(); !changed || err != nil {
		t.Fatalf("Reload with k1's link dangling: %v, %v; want k1 gone", changed, err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k1"}), "not a known")
	if err := os.Remove(filepath.Join(dir, "k1")); err != nil {
		t.Fatal(err)
	}
	if changed, err := v.Reload(); changed || err != nil {
		t.Fatalf("Reload after k1's link is gone: %v, %v; want no change", changed, err)
	}
	wantVerify(t, v, mint(t, secret, token.MintOptions{KeyID: "k1"}), "not a known")
	wantVerify(t, v, mint(t, secret2, token.MintOptions{KeyID: "k2"}), "")
}
