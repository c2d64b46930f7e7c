package edge

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTAuth authenticates clients with a JSON Web Token: the sub claim is
// the session, exp is required, and the signature is HS256 with a shared
// secret, or RS256 or EdDSA checked with a public key. Tokens come as
// ?token= or Authorization: Bearer on WebSocket, and in the hello frame on
// TCP.
type JWTAuth struct {
	key    any // []byte, *rsa.PublicKey or ed25519.PublicKey
	parser *jwt.Parser
}

// NewHS256Auth verifies tokens signed with secret (at least 32 bytes).
func NewHS256Auth(secret []byte) (*JWTAuth, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("jwt secret of %d bytes: use at least 32", len(secret))
	}
	return newJWTAuth(secret, jwt.SigningMethodHS256.Alg()), nil
}

// NewPublicKeyAuth verifies tokens signed by the private half of the PEM
// public key: RS256 for an RSA key, EdDSA for an Ed25519 key.
func NewPublicKeyAuth(pemBytes []byte) (*JWTAuth, error) {
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
		return newJWTAuth(k, jwt.SigningMethodRS256.Alg()), nil
	case ed25519.PublicKey:
		return newJWTAuth(k, jwt.SigningMethodEdDSA.Alg()), nil
	}
	return nil, fmt.Errorf("jwt public key of type %T: want RSA or Ed25519", pub)
}

func newJWTAuth(key any, alg string) *JWTAuth {
	return &JWTAuth{key: key, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
	)}
}

// Authenticate checks cr.Token and returns its subject as the session.
func (a *JWTAuth) Authenticate(_ context.Context, cr Credentials) (string, error) {
	if cr.Token == "" {
		return "", errors.New("missing token")
	}
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(cr.Token, &claims, func(*jwt.Token) (any, error) { return a.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "", errors.New("token has no expiry (exp)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "", errors.New("token signature is not valid")
	case err != nil:
		return "", fmt.Errorf("token is not valid: %w", err)
	case !ValidSession(claims.Subject):
		return "", fmt.Errorf("token subject %q is not a session id (1-128 of A-Z a-z 0-9 _ -)", claims.Subject)
	}
	return claims.Subject, nil
}

// MintToken signs a token for session, valid for ttl, with key: a PEM
// private key (RSA: RS256, Ed25519: EdDSA) or, for anything else, an HS256
// secret of at least 32 bytes.
func MintToken(key []byte, session string, ttl time.Duration) (string, error) {
	if !ValidSession(session) {
		return "", fmt.Errorf("session %q: want 1-128 characters of A-Z a-z 0-9 _ -", session)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime %v: want a positive duration", ttl)
	}
	method, signer, err := signingKey(key)
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   session,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
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
