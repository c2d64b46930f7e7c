package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/token"
)

// checkAccepted fails unless what a verifier accepted keeps the token
// rules: a valid session id, groups by the rule of push.CheckGroups.
func checkAccepted(t *testing.T, session string, groups []string) {
	t.Helper()
	if err := push.CheckSession(session); err != nil {
		t.Fatalf("accepted session %q: %v", session, err)
	}
	if err := push.CheckGroups(groups); err != nil {
		t.Fatalf("accepted groups %q: %v", groups, err)
	}
}

// checkRefusal fails if a refusal's message, which the client may be
// shown, gives away the secret.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), string(secret)) {
		t.Fatalf("refusal %q reveals the secret", err)
	}
}

// FuzzVerifyGroups: any string given as a token is refused with a message
// that keeps the secret, or, signed by the secret, gives a valid session
// and groups. The seeds are the tokens an attacker tries first: alg none,
// a signature cut off, claims swapped under a valid signature.
func FuzzVerifyGroups(f *testing.F) {
	good, err := token.MintGroups(secret, "alice", []string{"g1"}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	none := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	for _, s := range []string{good, none, parts[0] + "." + parts[1], parts[0] + "." + b64([]byte(`{"sub":"mallory","exp":9999999999}`)) + "." + parts[2],
		"", "..", "a.b.c", good + "x", strings.Repeat("e30.", 3)} {
		f.Add(s)
	}
	v, err := token.NewHS256(secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		session, groups, err := v.VerifyGroups(tok)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, session, groups)
	})
}

// FuzzVerifyClaims: a token whose signature is valid carries any claims
// (the JSON is the fuzzer's), checked by a verifier that wants an audience
// and an issuer: it is accepted only with an exp not passed (by more than
// token.Leeway), an nbf reached, the aud and iss wanted, a valid session in
// sub and valid groups; and what is accepted is what the claims say, its
// connection living until exp and the leeway.
func FuzzVerifyClaims(f *testing.F) {
	for _, c := range []string{`{"sub":"alice","exp":9999999999,"aud":"svc","iss":"idp"}`, `{"sub":"alice","exp":9999999999,"aud":["x","svc"],"iss":"idp"}`,
		`{"sub":"alice","exp":9999999999,"aud":"svc"}`, `{"sub":"alice","exp":9999999999,"aud":"other","iss":"idp"}`, `{"sub":"alice","exp":9999999999}`, `{"sub":"alice"}`, `{"sub":"alice","exp":1}`,
		`{"sub":"all","exp":9999999999}`, `{"sub":"a.b","exp":9999999999}`, `{"sub":"alice","exp":9999999999,"nbf":9999999998}`,
		`{"sub":"alice","exp":9999999999,"groups":["g1","g 2"]}`, `{"sub":"alice","exp":"9999999999"}`,
		`{"sub":"alice","exp":9999999999,"groups":"g1"}`, `{"sub":"alice","exp":1e300,"aud":"svc","iss":"idp"}`, `{"sub":"alice","exp":9999999999,"sub":"bob"}`,
		`[]`, `null`, `{"sub":"alice","exp":9999999999.5,"groups":null}`} {
		f.Add(c)
	}
	v, err := token.NewHS256(secret, token.WithAudience("svc"), token.WithIssuer("idp"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, claims string) {
		session, groups, until, err := v.VerifyClaims(signHS256(`{"alg":"HS256","typ":"JWT"}`, claims))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, session, groups)
		var c struct {
			Sub    string      `json:"sub"`
			Iss    string      `json:"iss"`
			Aud    any         `json:"aud"`
			Exp    json.Number `json:"exp"` // a number, or a string of one: golang-jwt takes both
			Nbf    json.Number `json:"nbf"`
			Groups []string    `json:"groups"`
		}
		if err := json.Unmarshal([]byte(claims), &c); err != nil {
			t.Fatalf("accepted claims %s that do not decode: %v", claims, err)
		}
		exp, expErr := c.Exp.Float64()
		nbf, _ := c.Nbf.Float64()
		now := float64(time.Now().Unix())
		leeway := token.Leeway.Seconds() + 1 // the verifier's clock ran a moment before this one
		switch {
		case expErr != nil || exp < now-leeway:
			t.Fatalf("accepted claims %s: no exp, or one passed", claims)
		case nbf > now+leeway:
			t.Fatalf("accepted claims %s: nbf not reached", claims)
		case c.Iss != "idp" || !audience(c.Aud, "svc"):
			t.Fatalf("accepted claims %s: not the issuer or audience wanted", claims)
		case exp < 1<<40 && until.Unix() != int64(exp)+int64(token.Leeway.Seconds()): // exp to the second (jwt.TimePrecision)
			t.Fatalf("accepted claims %s until %v", claims, until)
		case session != c.Sub || strings.Join(groups, ",") != strings.Join(c.Groups, ","):
			t.Fatalf("accepted claims %s as session %q, groups %q", claims, session, groups)
		}
	})
}

// audience reports whether an aud claim, a string or a list of them,
// names want.
func audience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if v == want {
				return true
			}
		}
	}
	return false
}

// signHS256 is a JWT of header and claims as given, signed with secret.
func signHS256(header, claims string) string {
	signing := b64([]byte(header)) + "." + b64([]byte(claims))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
