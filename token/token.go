// Package token mints and checks the JSON Web Tokens clients connect with:
// sub is the session, exp is required, and the signature is HS256 with a
// shared secret, or RS256 or EdDSA checked with a public key. It imports
// golang-jwt and the vocabulary only, so a tool that mints tokens
// (pushctl) does not link the edge server; the edge takes a Verifier
// through edge.BearerAuth (tests/imports_test.go keeps both so).
package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/push"
)

// Verifier checks tokens: the sub claim is the session, exp is required,
// and the signature is HS256 with a shared secret, or RS256 or EdDSA
// checked with a public key. It is safe for concurrent use.
type Verifier struct {
	key    any // []byte, *rsa.PublicKey or ed25519.PublicKey
	parser *jwt.Parser
}

// NewHS256 verifies tokens signed with secret (at least 32 bytes).
func NewHS256(secret []byte) (*Verifier, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("jwt secret of %d bytes: use at least 32", len(secret))
	}
	return newVerifier(secret, jwt.SigningMethodHS256.Alg()), nil
}

// NewPublicKey verifies tokens signed by the private half of the PEM
// public key: RS256 for an RSA key, EdDSA for an Ed25519 key.
func NewPublicKey(pemBytes []byte) (*Verifier, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("jwt public key: no PEM block found")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("jwt public key: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return newVerifier(k, jwt.SigningMethodRS256.Alg()), nil
	case ed25519.PublicKey:
		return newVerifier(k, jwt.SigningMethodEdDSA.Alg()), nil
	}
	return nil, fmt.Errorf("jwt public key of type %T: want RSA or Ed25519", pub)
}

// Leeway is how long after its exp a token is still accepted (and how
// long before its nbf): the clocks of the service that mints tokens and of
// the edge disagree a little.
const Leeway = 5 * time.Second

func newVerifier(key any, alg string) *Verifier {
	return &Verifier{key: key, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	)}
}

// Claims are the claims of a client's token: the registered ones, and
// the groups its connection is a member of from the start.
type Claims struct {
	jwt.RegisteredClaims
	// Groups, optional: at most push.MaxGroups names, each by the rule of
	// push.CheckGroup.
	Groups []string `json:"groups,omitempty"`
}

// Verify checks tok and returns its subject, the session. Its errors say
// what is wrong without revealing a secret, so they may be shown to the
// client.
func (a *Verifier) Verify(tok string) (string, error) {
	session, _, err := a.VerifyGroups(tok)
	return session, err
}

// VerifyGroups is Verify that also returns the token's groups claim. A
// token whose groups break the rule (push.CheckGroups) is refused, with an
// error naming the name at fault.
func (a *Verifier) VerifyGroups(tok string) (session string, groups []string, err error) {
	if tok == "" {
		return "", nil, errors.New("missing token")
	}
	var claims Claims
	_, err = a.parser.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return a.key, nil })
	if err != nil {
		return "", nil, verifyError(err)
	}
	if err := push.CheckSession(claims.Subject); err != nil {
		return "", nil, fmt.Errorf("token subject: %w: not a session id", err)
	}
	if err := push.CheckGroups(claims.Groups); err != nil {
		return "", nil, fmt.Errorf("token groups claim: %w", err)
	}
	return claims.Subject, claims.Groups, nil
}

// verifyError says what is wrong with a token the parser refused, without
// revealing a secret.
func verifyError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errors.New("token has no expiry (exp)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return errors.New("token signature is not valid")
	}
	return fmt.Errorf("token is not valid: %w", err)
}

// Mint signs a token for session, valid for ttl, with key: a PEM
// private key (RSA: RS256, Ed25519: EdDSA) or, for anything else, an HS256
// secret of at least 32 bytes.
func Mint(key []byte, session string, ttl time.Duration) (string, error) {
	return MintGroups(key, session, nil, ttl)
}

// MintGroups is Mint with a groups claim: the connection is a member of
// groups (at most push.MaxGroups, each by the rule of push.CheckGroup)
// from the start.
func MintGroups(key []byte, session string, groups []string, ttl time.Duration) (string, error) {
	if err := push.CheckSession(session); err != nil {
		return "", err
	}
	if err := push.CheckGroups(groups); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime %v: want a positive duration", ttl)
	}
	method, signer, err := signingKey(key)
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   session,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}, Groups: groups}
	return jwt.NewWithClaims(method, claims).SignedString(signer)
}

func signingKey(key []byte) (jwt.SigningMethod, any, error) {
	block, _ := pem.Decode(key)
	if block == nil {
		if len(key) < 32 {
			return nil, nil, fmt.Errorf("jwt secret of %d bytes: use at least 32", len(key))
		}
		return jwt.SigningMethodHS256, key, nil
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if rsaKey, rerr := x509.ParsePKCS1PrivateKey(block.Bytes); rerr == nil {
			return jwt.SigningMethodRS256, rsaKey, nil
		}
		return nil, nil, fmt.Errorf("jwt private key: %w", err)
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, k, nil
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, k, nil
	}
	return nil, nil, fmt.Errorf("jwt private key of type %T: want RSA or Ed25519", priv)
}

// ReadSecretFile reads an HS256 secret from path, surrounding white space
// ignored (a secret file written by echo or an editor ends in a newline):
// every reader of a secret file — the node that checks tokens and each
// tool that mints them — must read it the same way, or their tokens would
// not match.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	return bytes.TrimSpace(b), nil
}
