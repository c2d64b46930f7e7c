package token_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/token"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func pemBlock(t testing.TB, typ string, der []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// keyPairs returns, per algorithm, the key a minter signs with and the
// authenticator that checks it.
func keyPairs(t testing.TB) map[string]struct {
	sign []byte
	auth *token.Verifier
} {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]struct {
		sign []byte
		auth *token.Verifier
	}{}
	hs, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	out["HS256"] = struct {
		sign []byte
		auth *token.Verifier
	}{secret, hs}
	for name, k := range map[string]struct{ priv, pub any }{"RS256": {rsaKey, &rsaKey.PublicKey}, "EdDSA": {edPriv, edPub}} {
		privDER, perr := x509.MarshalPKCS8PrivateKey(k.priv)
		pubDER, uerr := x509.MarshalPKIXPublicKey(k.pub)
		a, err := token.NewPublicKey(pemBlock(t, "PUBLIC KEY", pubDER, uerr))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = struct {
			sign []byte
			auth *token.Verifier
		}{pemBlock(t, "PRIVATE KEY", privDER, perr), a}
	}
	return out
}

func TestJWTAuth(t *testing.T) {
	for alg, kp := range keyPairs(t) {
		tok, err := token.Mint(kp.sign, "alice", time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		session, err := kp.auth.Verify(tok)
		if err != nil || session != "alice" {
			t.Fatalf("%s: %q, %v; want alice", alg, session, err)
		}
	}
	kps := keyPairs(t)
	hs := kps["HS256"].auth
	sign := func(claims jwt.Claims, method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	past := jwt.NewNumericDate(time.Now().Add(-time.Hour))
	future := jwt.NewNumericDate(time.Now().Add(time.Hour))
	rsTok, _ := token.Mint(kps["RS256"].sign, "alice", time.Minute)
	for name, tc := range map[string]struct {
		token string
		want  string
	}{
		"missing":      {"", "missing token"},
		"garbage":      {"not.a.token", "not valid"},
		"expired":      {sign(jwt.RegisteredClaims{Subject: "a", ExpiresAt: past}, jwt.SigningMethodHS256, secret), "expired"},
		"no exp":       {sign(jwt.RegisteredClaims{Subject: "a"}, jwt.SigningMethodHS256, secret), "no expiry"},
		"other secret": {sign(jwt.RegisteredClaims{Subject: "a", ExpiresAt: future}, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32))), "signature"},
		"other method": {rsTok, "not valid"},
		"bad subject":  {sign(jwt.RegisteredClaims{Subject: "a.b", ExpiresAt: future}, jwt.SigningMethodHS256, secret), "not a session id"},
		"none alg":     {sign(jwt.RegisteredClaims{Subject: "a", ExpiresAt: future}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), "not valid"},
	} {
		_, err := hs.Verify(tc.token)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", name, err, tc.want)
		}
	}
	if _, err := token.NewHS256([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	if _, err := token.Mint(secret, "bad session", time.Minute); err == nil {
		t.Error("minted a token for an invalid session")
	}
}

// A secret file read by ReadSecretFile signs and checks the same tokens
// whatever white space surrounds the secret.
func TestReadSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, append(append([]byte(" \n"), secret...), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := token.ReadSecretFile(path)
	if err != nil || string(key) != string(secret) {
		t.Fatalf("got %q, %v; want the secret without its white space", key, err)
	}
	if _, err := token.ReadSecretFile(path + ".missing"); err == nil || !strings.Contains(err.Error(), "jwt secret") {
		t.Fatalf("missing file: %v; want a jwt secret error", err)
	}
}

// A token is accepted up to Leeway after its exp, and not after that.
func TestLeeway(t *testing.T) {
	secret := []byte("an HS256 secret of at least 32 bytes, for tests")
	v, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		expiredFor time.Duration
		ok         bool
	}{{token.Leeway / 2, true}, {2 * token.Leeway, false}} {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(-c.expiredFor))}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); (err == nil) != c.ok {
			t.Errorf("expired %s ago: %v; want accepted %v", c.expiredFor, err, c.ok)
		}
	}
}

func TestGroupsClaim(t *testing.T) {
	hs, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.MintGroups(secret, "alice", []string{"user-alice", "room_1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	session, groups, err := hs.VerifyGroups(tok)
	if err != nil || session != "alice" || strings.Join(groups, ",") != "user-alice,room_1" {
		t.Fatalf("%q %q %v; want alice [user-alice room_1]", session, groups, err)
	}
	many := make([]string, 33)
	for i := range many {
		many[i] = "g" + strconv.Itoa(i)
	}
	future := jwt.NewNumericDate(time.Now().Add(time.Hour))
	for name, groups := range map[string][]string{"too many": many, "bad name": {"ok", "a.b"}, "reserved": {"all"}} {
		raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, token.Claims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: future}, Groups: groups}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := hs.VerifyGroups(raw); err == nil || !strings.Contains(err.Error(), "groups claim") {
			t.Errorf("%s: %v; want a groups claim error", name, err)
		}
		if _, err := token.MintGroups(secret, "alice", groups, time.Minute); err == nil {
			t.Errorf("%s: minted", name)
		}
	}
}
