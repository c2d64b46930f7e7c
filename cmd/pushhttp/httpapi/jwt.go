package httpapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/token"
)

// Scope is the scope claim value a producer token must hold (RFC 8693:
// space-separated; other values may be beside it). Client tokens, which
// name a session to connect as, never hold it.
const Scope = "push"

// DefaultAudience is the aud claim a producer token must name unless
// pushhttp is told another (--jwt-audience). Client tokens carry none, or
// the edge's own.
const DefaultAudience = "pushhttp"

// producerClaims are the claims of a producer token: sub names the
// producer (in logs), exp is required, aud names pushhttp, scope holds
// Scope, and targets, optional, what it may push to (ParseTarget's
// syntax; none: DefaultTargets).
type producerClaims struct {
	jwt.RegisteredClaims
	Scope   string   `json:"scope,omitempty"`
	Targets []string `json:"targets,omitempty"`
}

// JWTVerifier checks producer tokens signed HS256 with pushhttp's own
// secret. Safe for concurrent use.
type JWTVerifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewJWTVerifier checks tokens signed with secret (at least 32 bytes) that
// name audience in their aud claim.
func NewJWTVerifier(secret []byte, audience string) (*JWTVerifier, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("jwt secret of %d bytes: use at least 32", len(secret))
	}
	if audience == "" {
		return nil, errors.New("jwt audience: empty; a producer token must name pushhttp's")
	}
	return &JWTVerifier{secret: secret, parser: jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithAudience(audience), jwt.WithLeeway(token.Leeway))}, nil
}

// verify checks tok and returns who it names, or why it is refused: 401
// for a token that is not valid here (signature, expiry, audience, sub),
// 403 for a valid one without the push scope.
func (v *JWTVerifier) verify(tok string) (Identity, *apiError) {
	var c producerClaims
	if _, err := v.parser.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return v.secret, nil }); err != nil {
		return Identity{}, invalidToken(tokenError(err))
	}
	if err := push.CheckName("token subject", c.Subject); err != nil {
		return Identity{}, invalidToken(err.Error() + " (sub names the producer)")
	}
	if !slices.Contains(strings.Fields(c.Scope), Scope) {
		return Identity{}, insufficientScope(c.Subject)
	}
	if c.Targets != nil && len(c.Targets) == 0 {
		// Read as none, it would be every session and group: the opposite
		// of what a token minted to push nowhere means.
		return Identity{}, invalidToken("token targets claim: an empty list; name what it may push to, or leave the claim out")
	}
	targets, err := ParseTargets(c.Targets)
	if err != nil {
		return Identity{}, invalidToken("token targets claim: " + err.Error())
	}
	return Identity{Name: c.Subject, Via: "jwt", Targets: targets}, nil
}

// tokenError says what is wrong with a token the parser refused, without
// revealing the secret.
func tokenError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience), strings.Contains(err.Error(), "aud claim is required"):
		return "token audience (aud) is not pushhttp's: a client token is no producer token"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no expiry (exp)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signature is not valid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	}
	return "token is not valid"
}

// MintToken signs a producer token for name (its sub), valid for ttl,
// with the push scope, audience as its aud and targets (ParseTarget's
// syntax; none: DefaultTargets).
func MintToken(secret []byte, name string, ttl time.Duration, audience string, targets []string) (string, error) {
	if err := push.CheckName("producer name", name); err != nil {
		return "", err
	}
	if _, err := ParseTargets(targets); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime %v: want a positive duration", ttl)
	}
	if len(secret) < 32 {
		return "", fmt.Errorf("jwt secret of %d bytes: use at least 32", len(secret))
	}
	now := time.Now()
	c := producerClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: name, Audience: jwt.ClaimStrings{audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}, Scope: Scope, Targets: targets}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
