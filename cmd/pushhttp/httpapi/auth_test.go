package httpapi

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushfabric/pushfabric/token"
)

var (
	testSecret  = []byte("pushhttp's own HS256 secret, 32 bytes at least")
	otherSecret = []byte("the edge's client secret, also 32 bytes or more")
)

func sign(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearer(cred string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "/v1/push/alice/high", nil)
	if cred != "" {
		r.Header.Set("Authorization", cred)
	}
	return r
}

// Every credential but a good key or a good producer token is refused:
// 401 with a challenge for what is missing or not valid here, 403 for a
// valid token of pushhttp's without the push scope. Client tokens — even
// signed with the very secret pushhttp checks with — are refused.
func TestAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	key := NewKey()
	if err := AppendKey(path, KeyEntry{Name: "billing", Hash: HashKey(key)}); err != nil {
		t.Fatal(err)
	}
	keys, err := OpenKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewJWTVerifier(testSecret, DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	good, err := MintToken(testSecret, "cron", time.Hour, DefaultAudience, []string{"session:cron-*"})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	client, _ := token.Mint(testSecret, "alice", time.Hour)
	clientAud, _ := token.MintWith(testSecret, "alice", time.Hour, token.MintOptions{Audience: DefaultAudience})
	auth := Auth{Keys: keys, JWT: v}
	for _, c := range []struct {
		name, cred  string
		status      int
		who, inBody string
	}{
		{"a key", "Bearer " + key, 0, "billing", ""},
		{"a key, scheme in lower case", "bearer " + key, 0, "billing", ""},
		{"a producer token", "Bearer " + good, 0, "cron", ""},
		{"nothing", "", 401, "", "no credentials"},
		{"basic auth", "Basic YTpi", 401, "", "want Authorization: Bearer"},
		{"an empty bearer", "Bearer ", 401, "", "want Authorization: Bearer"},
		{"a wrong key", "Bearer " + NewKey(), 401, "", "not an API key of this server"},
		{"the key's hash", "Bearer " + KeyPrefix + strings.Repeat("0", 43), 401, "", "not an API key"},
		{"a client token", "Bearer " + client, 401, "", "a client token is no producer token"},
		{"a client token with pushhttp's audience", "Bearer " + clientAud, 403, "", `no "push" in its scope`},
		{"no scope", "Bearer " + sign(t, testSecret, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience, "exp": exp}), 403, "", "scope"},
		{"another scope", "Bearer " + sign(t, testSecret, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience, "exp": exp, "scope": "pushers read"}), 403, "", "scope"},
		{"expired", "Bearer " + sign(t, testSecret, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience, "exp": time.Now().Add(-time.Minute).Unix(), "scope": Scope}), 401, "", "token expired"},
		{"no exp", "Bearer " + sign(t, testSecret, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience, "scope": Scope}), 401, "", "no expiry"},
		{"another audience", "Bearer " + sign(t, testSecret, jwt.MapClaims{"sub": "cron", "aud": "edge", "exp": exp, "scope": Scope}), 401, "", "audience"},
		{"another secret", "Bearer " + sign(t, otherSecret, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience, "exp": exp, "scope": Scope}), 401, "", "signature"},
		{"alg none", "Bearer " + noneToken(t), 401, "", "token"},
		{"no sub", "Bearer " + sign(t, testSecret, jwt.MapClaims{"aud": DefaultAudience, "exp": exp, "scope": Scope}), 401, "", "sub names the producer"},
		{"bad targets", "Bearer " + sign(t, testSecret, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience, "exp": exp, "scope": Scope, "targets": []string{"nowhere"}}), 401, "", "targets claim"},
		{"garbage", "Bearer not.a.token", 401, "", "malformed"},
	} {
		id, e := auth.authenticate(bearer(c.cred))
		switch {
		case c.status == 0 && (e != nil || id.Name != c.who):
			t.Errorf("%s: %+v, %v; want %s in", c.name, id, e, c.who)
		case c.status != 0 && (e == nil || e.Status != c.status || !strings.Contains(e.Message, c.inBody)):
			t.Errorf("%s: %+v; want %d saying %q", c.name, e, c.status, c.inBody)
		case c.status != 0 && !strings.HasPrefix(e.challenge, realm):
			t.Errorf("%s: challenge %q", c.name, e.challenge)
		}
	}
	// Only keys: a token is not even parsed; only tokens: a key is refused.
	if _, e := (Auth{Keys: keys}).authenticate(bearer("Bearer " + good)); e == nil || e.Status != 401 {
		t.Errorf("a token where only keys are taken: %v", e)
	}
	if _, e := (Auth{JWT: v}).authenticate(bearer("Bearer " + key)); e == nil || e.Status != 401 {
		t.Errorf("a key where only tokens are taken: %v", e)
	}
}

func noneToken(t *testing.T) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "cron", "aud": DefaultAudience,
		"exp": time.Now().Add(time.Hour).Unix(), "scope": Scope}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifierAndMintRefuse(t *testing.T) {
	if _, err := NewJWTVerifier([]byte("short"), DefaultAudience); err == nil {
		t.Error("a 5-byte secret was taken")
	}
	if _, err := NewJWTVerifier(testSecret, ""); err == nil {
		t.Error("an empty audience was taken")
	}
	for _, c := range []struct {
		name    string
		ttl     time.Duration
		targets []string
	}{{"bad.name", time.Hour, nil}, {"cron", 0, nil}, {"cron", time.Hour, []string{"x"}}} {
		if _, err := MintToken(testSecret, c.name, c.ttl, DefaultAudience, c.targets); err == nil {
			t.Errorf("MintToken(%q, %v, %q) worked", c.name, c.ttl, c.targets)
		}
	}
}

func TestTargets(t *testing.T) {
	narrow, err := ParseTargets([]string{"session:billing-*", "group:team-?"})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := ParseTargets([]string{"all"})
	for _, c := range []struct {
		targets []Target
		kind    TargetKind
		name    string
		want    bool
	}{
		{nil, TargetSession, "alice", true},
		{nil, TargetGroup, "user-alice", true},
		{nil, TargetAll, "", false},
		{narrow, TargetSession, "billing-7", true},
		{narrow, TargetSession, "alice", false},
		{narrow, TargetGroup, "team-a", true},
		{narrow, TargetGroup, "team-ab", false},
		{narrow, TargetAll, "", false},
		{all, TargetAll, "", true},
		{all, TargetSession, "alice", false},
	} {
		if got := allows(c.targets, c.kind, c.name); got != c.want {
			t.Errorf("allows(%v, %d, %q) = %v; want %v", c.targets, c.kind, c.name, got, c.want)
		}
	}
}
