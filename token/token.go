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
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/push"
)

// Verifier checks tokens: the sub claim is the session, exp is required,
// and the signature is HS256 with a shared secret, or RS256 or EdDSA
// checked with a public key. Its keys may be several, chosen by the
// token's kid (NewKeyFiles), and replaced while it is in use (Reload).
// It is safe for concurrent use.
type Verifier struct {
	keys   atomic.Pointer[keySet] // replaced whole by Reload
	files  keyFiles               // where Reload reads keys from; zero for a fixed key
	parser *jwt.Parser
}

// Option is an optional check of a Verifier.
type Option func(*[]jwt.ParserOption)

// WithAudience refuses tokens whose aud claim does not name aud.
func WithAudience(aud string) Option {
	return func(o *[]jwt.ParserOption) { *o = append(*o, jwt.WithAudience(aud)) }
}

// WithIssuer refuses tokens whose iss claim is not iss.
func WithIssuer(iss string) Option {
	return func(o *[]jwt.ParserOption) { *o = append(*o, jwt.WithIssuer(iss)) }
}

// NewHS256 verifies tokens signed with secret (at least 32 bytes), whatever
// their kid.
func NewHS256(secret []byte, opts ...Option) (*Verifier, error) {
	k, err := hmacKey(secret)
	if err != nil {
		return nil, err
	}
	return newVerifier(&keySet{any: []key{k}}, opts), nil
}

// NewPublicKey verifies tokens signed by the private half of the PEM
// public key, whatever their kid: RS256 for an RSA key, EdDSA for an
// Ed25519 key.
func NewPublicKey(pemBytes []byte, opts ...Option) (*Verifier, error) {
	k, err := pemKey(pemBytes)
	if err != nil {
		return nil, err
	}
	return newVerifier(&keySet{any: []key{k}}, opts), nil
}

// Leeway is how long after its exp a token is still accepted (and how
// long before its nbf): the clocks of the service that mints tokens and of
// the edge disagree a little.
const Leeway = 5 * time.Second

func newVerifier(ks *keySet, opts []Option) *Verifier {
	po := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	}
	for _, o := range opts {
		o(&po)
	}
	v := &Verifier{parser: jwt.NewParser(po...)}
	v.keys.Store(ks)
	return v
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
	session, groups, _, err = a.VerifyClaims(tok)
	return session, groups, err
}

// VerifyClaims is VerifyGroups that also returns until when the token is
// accepted: its exp plus Leeway. A connection made with the token lives no
// longer (edge.ExpiryVerifier).
func (a *Verifier) VerifyClaims(tok string) (session string, groups []string, until time.Time, err error) {
	if tok == "" {
		return "", nil, time.Time{}, errors.New("missing token")
	}
	var claims Claims
	_, err = a.parser.ParseWithClaims(tok, &claims, a.keyFor)
	if err != nil {
		return "", nil, time.Time{}, verifyError(err)
	}
	if err := push.CheckSession(claims.Subject); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("token subject: %w: not a session id", err)
	}
	if err := push.CheckGroups(claims.Groups); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("token groups claim: %w", err)
	}
	return claims.Subject, claims.Groups, claims.ExpiresAt.Add(Leeway), nil
}

// verifyError says what is wrong with a token the parser refused, without
// revealing a secret.
func verifyError(err error) error {
	var kerr *keyError
	switch {
	case errors.As(err, &kerr):
		return kerr
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errors.New("token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenInvalidAudience), strings.Contains(err.Error(), "aud claim is required"):
		return errors.New("token audience (aud) is not this service")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), strings.Contains(err.Error(), "iss claim is required"):
		return errors.New("token issuer (iss) is not the one trusted")
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
	return MintWith(key, session, ttl, MintOptions{Groups: groups})
}

// MintOptions are the optional parts of a minted token.
type MintOptions struct {
	Groups    []string  // the groups claim: at most push.MaxGroups, each by the rule of push.CheckGroup
	KeyID     string    // the header's kid: which of the verifier's keys checks it
	Audience  string    // the aud claim
	Issuer    string    // the iss claim
	NotBefore time.Time // the nbf claim; zero: none
}

// MintWith is Mint with the optional parts of o.
func MintWith(key []byte, session string, ttl time.Duration, o MintOptions) (string, error) {
	if err := push.CheckSession(session); err != nil {
		return "", err
	}
	if err := push.CheckGroups(o.Groups); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime %v: want a positive duration", ttl)
	}
	method, signer, err := signingKey(key)
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(method, mintClaims(session, ttl, o))
	if o.KeyID != "" {
		t.Header["kid"] = o.KeyID
	}
	return t.SignedString(signer)
}

func mintClaims(session string, ttl time.Duration, o MintOptions) Claims {
	now := time.Now()
	c := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   session,
		Issuer:    o.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}, Groups: o.Groups}
	if o.Audience != "" {
		c.Audience = jwt.ClaimStrings{o.Audience}
	}
	if !o.NotBefore.IsZero() {
		c.NotBefore = jwt.NewNumericDate(o.NotBefore)
	}
	return c
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
