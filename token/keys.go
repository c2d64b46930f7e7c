package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// algs are the signing methods a Verifier accepts; each key accepts one.
var algs = []string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodRS256.Alg(), jwt.SigningMethodEdDSA.Alg()}

// key is one verification key and the one signing method it checks, so
// that a token cannot choose how its signature is read (an HS256 token
// "signed" with a public key's bytes).
type key struct {
	alg string
	k   any // []byte, *rsa.PublicKey or ed25519.PublicKey
}

// keySet is a Verifier's keys. A token with a kid is checked with the key
// of that id, or, with none of that id, with the keys in any; a token
// without a kid with every key of its signing method.
type keySet struct {
	byID map[string]key
	any  []key // keys that check a token whatever its kid (NewHS256, NewPublicKey)
}

// keyError is a token refused for its kid: its text may be shown.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// keyFor is the jwt.Keyfunc: the keys that may check t.
func (a *Verifier) keyFor(t *jwt.Token) (any, error) {
	ks := a.keys.Load()
	alg := t.Method.Alg()
	if kid, ok := t.Header["kid"].(string); ok && kid != "" {
		if k, ok := ks.byID[kid]; ok && k.alg == alg {
			return k.k, nil
		}
		if len(ks.any) == 0 {
			return nil, &keyError{fmt.Sprintf("token key id (kid) %.64q is not a known %s key", kid, alg)}
		}
	}
	set := jwt.VerificationKeySet{}
	for _, k := range ks.all() {
		if k.alg == alg {
			set.Keys = append(set.Keys, k.k)
		}
	}
	switch {
	case len(set.Keys) == 0:
		return nil, &keyError{"token is not valid: signed with " + alg + ", which no key checks"}
	case len(set.Keys) > MaxKeysWithoutKid:
		return nil, &keyError{fmt.Sprintf("token has no key id (kid), and %d %s keys could check it: at most %d are tried without one", len(set.Keys), alg, MaxKeysWithoutKid)}
	}
	return set, nil
}

// MaxKeysWithoutKid is how many keys of its signing method a token without
// a kid may be checked with. Each is a signature verification (some 120 µs
// for RS256), and anyone may present such a token: with more keys than
// this, a token must name its key.
const MaxKeysWithoutKid = 4

// all is every key, those by id in the order of their ids.
func (ks *keySet) all() []key {
	out := slices.Clone(ks.any)
	for _, id := range slices.Sorted(maps.Keys(ks.byID)) {
		out = append(out, ks.byID[id])
	}
	return out
}

func hmacKey(secret []byte) (key, error) {
	if len(secret) < 32 {
		return key{}, fmt.Errorf("jwt secret of %d bytes: use at least 32", len(secret))
	}
	return key{jwt.SigningMethodHS256.Alg(), secret}, nil
}

func pemKey(pemBytes []byte) (key, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return key{}, errors.New("jwt public key: no PEM block found")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return key{}, fmt.Errorf("jwt public key: %w", err)
	}
	return publicKey(pub)
}

func publicKey(pub any) (key, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return key{jwt.SigningMethodRS256.Alg(), k}, nil
	case ed25519.PublicKey:
		return key{jwt.SigningMethodEdDSA.Alg(), k}, nil
	}
	return key{}, fmt.Errorf("jwt public key of type %T: want RSA or Ed25519", pub)
}

// keyFiles is where a Verifier's keys are read from. Owned by Reload's
// caller: Reload is not called concurrently with itself.
type keyFiles struct {
	dir, jwks string
	sum       [sha256.Size]byte // of the bytes last read, loaded or not
}

// NewKeyFiles verifies tokens with the keys in dir and in the JWKS file
// jwks (either may be empty, not both), each chosen by the token's kid; a
// token without a kid is checked with every key of its signing method, if
// they are no more than MaxKeysWithoutKid.
//
// In dir, each file is one key whose id is the file's name without a
// ".pem" ending (files whose names begin with a dot are skipped): a PEM
// public key (RSA: RS256, Ed25519: EdDSA), or else an HS256 secret (at
// least 32 bytes, surrounding white space ignored, as ReadSecretFile; a
// file with a PEM header that does not decode is an error, not a secret).
// The JWKS file (RFC 7517) holds keys of kty RSA, OKP (crv Ed25519) and
// oct (HS256), each with a kid; keys of other types, or whose use is not
// sig, are skipped. One id names one key: an id given twice, in either or
// across both, is an error. Reload reads them again.
func NewKeyFiles(dir, jwks string, opts ...Option) (*Verifier, error) {
	if dir == "" && jwks == "" {
		return nil, errors.New("jwt keys: give a key directory or a JWKS file")
	}
	v := newVerifier(&keySet{}, opts)
	v.files = keyFiles{dir: dir, jwks: jwks}
	if _, err := v.Reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// Reload reads the key files of a Verifier made by NewKeyFiles again and,
// if their bytes changed, uses the keys they hold from now on. It reports
// whether they changed. Keys that cannot be read or parsed, or an empty
// set, leave the keys in use as they were, and return the error (once for
// the same bytes: a broken file is reported when it changes). A Verifier
// with a fixed key reports false. Reload must not be called concurrently
// with itself; Verify may be.
func (a *Verifier) Reload() (bool, error) {
	f := &a.files
	if f.dir == "" && f.jwks == "" {
		return false, nil
	}
	raw, err := f.read()
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(bytes.Join(raw.all(), []byte{0}))
	if sum == f.sum {
		return false, nil
	}
	f.sum = sum
	ks, err := raw.parse()
	if err != nil {
		return false, err
	}
	a.keys.Store(ks)
	return true, nil
}

// rawKeys are the bytes of the key files: each directory file by key id,
// and the JWKS file.
type rawKeys struct {
	ids   []string
	files [][]byte
	jwks  []byte
}

func (r *rawKeys) all() [][]byte {
	out := [][]byte{r.jwks}
	for i, id := range r.ids {
		out = append(out, []byte(id), r.files[i])
	}
	return out
}

func (f *keyFiles) read() (*rawKeys, error) {
	var r rawKeys
	if f.jwks != "" {
		b, err := readKeyFile(f.jwks)
		if err != nil {
			return nil, fmt.Errorf("jwt jwks: %w", err)
		}
		r.jwks = b
	}
	if f.dir == "" {
		return &r, nil
	}
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("jwt keys: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		b, err := readKeyFile(filepath.Join(f.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			// Removed since the listing, or a link whose file is gone (a
			// ConfigMap mount between its swap and the removal of the
			// old links): the key is no longer there.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("jwt keys: %w", err)
		}
		r.ids, r.files = append(r.ids, strings.TrimSuffix(e.Name(), ".pem")), append(r.files, b)
	}
	return &r, nil
}

// MaxKeyFile is the largest key file or JWKS file read, in bytes: some
// thousands of keys. A larger one (a wrong path, a runaway writer) is an
// error, not read whole every 2 s.
const MaxKeyFile = 1 << 20

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyFile+1))
	if err == nil && len(b) > MaxKeyFile {
		err = fmt.Errorf("%s: larger than %d bytes", path, MaxKeyFile)
	}
	return b, err
}

func (r *rawKeys) parse() (*keySet, error) {
	ks := &keySet{byID: map[string]key{}}
	for i, id := range r.ids {
		k, err := fileKey(r.files[i])
		if err == nil {
			err = addKey(ks.byID, id, k)
		}
		if err != nil {
			return nil, fmt.Errorf("jwt key %q: %w", id, err)
		}
	}
	if r.jwks != nil {
		if err := parseJWKS(r.jwks, ks.byID); err != nil {
			return nil, err
		}
	}
	if len(ks.byID) == 0 {
		return nil, errors.New("jwt keys: no key found")
	}
	return ks, nil
}

// addKey adds k to keys as id: one id names one key, whichever file
// holds it, so a second is an error.
func addKey(keys map[string]key, id string, k key) error {
	if _, dup := keys[id]; dup {
		return errors.New("key id given twice (in the directory as id and id.pem, or in the directory and the JWKS file, or twice in the JWKS file)")
	}
	keys[id] = k
	return nil
}

// fileKey is the key of one file of a key directory. A file with a PEM
// header that does not decode is an error, not a secret: its text is a
// public key's, known to anyone.
func fileKey(b []byte) (key, error) {
	if block, _ := pem.Decode(b); block != nil {
		return pemKey(b)
	}
	if bytes.Contains(b, []byte("-----BEGIN")) {
		return key{}, errors.New("a PEM block that does not decode (truncated, or its END line missing)")
	}
	return hmacKey(bytes.TrimSpace(b))
}

// jwk is one key of a JWKS file (RFC 7517, 7518 §6, 8037).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`   // RSA modulus
	E   string `json:"e"`   // RSA exponent
	Crv string `json:"crv"` // OKP curve
	X   string `json:"x"`   // OKP public key
	K   string `json:"k"`   // oct secret
}

func parseJWKS(b []byte, into map[string]key) error {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("jwt jwks: %w", err)
	}
	for i, j := range set.Keys {
		k, ok, err := j.key()
		switch {
		case err != nil:
			return fmt.Errorf("jwt jwks key %d (kid %q): %w", i, j.Kid, err)
		case !ok:
			continue
		case j.Kid == "":
			return fmt.Errorf("jwt jwks key %d: no kid", i)
		}
		if err := addKey(into, j.Kid, k); err != nil {
			return fmt.Errorf("jwt jwks key %d (kid %q): %w", i, j.Kid, err)
		}
	}
	return nil
}

// key is j's verification key; false for a key of a type or use this
// package does not check tokens with.
func (j *jwk) key() (key, bool, error) {
	if j.Use != "" && j.Use != "sig" {
		return key{}, false, nil
	}
	switch {
	case j.Kty == "RSA" && (j.Alg == "" || j.Alg == "RS256"):
		k, err := j.rsa()
		return k, true, err
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64(j.X, "x")
		if err == nil && len(x) != ed25519.PublicKeySize {
			err = fmt.Errorf("x of %d bytes: want %d", len(x), ed25519.PublicKeySize)
		}
		return key{jwt.SigningMethodEdDSA.Alg(), ed25519.PublicKey(x)}, true, err
	case j.Kty == "oct" && (j.Alg == "" || j.Alg == "HS256"):
		s, err := b64(j.K, "k")
		if err != nil {
			return key{}, true, err
		}
		k, err := hmacKey(s)
		return k, true, err
	}
	return key{}, false, nil
}

func (j *jwk) rsa() (key, error) {
	n, err := b64(j.N, "n")
	if err != nil {
		return key{}, err
	}
	e, err := b64(j.E, "e")
	if err != nil {
		return key{}, err
	}
	ev := new(big.Int).SetBytes(e)
	if len(n) < 256 || !ev.IsInt64() || ev.Int64() < 3 || ev.Int64() > 1<<31 {
		return key{}, errors.New("rsa key: modulus under 2048 bits or exponent out of range")
	}
	return key{jwt.SigningMethodRS256.Alg(), &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}}, nil
}

func b64(s, field string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s is not base64url", field)
	}
	return b, nil
}
