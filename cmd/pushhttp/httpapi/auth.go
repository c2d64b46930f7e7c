package httpapi

import (
	"net/http"
	"strings"
)

// Identity is who a request authenticated as: the key's or token's name,
// which of the two it used, and what it may push to (nil: DefaultTargets).
type Identity struct {
	Name    string
	Via     string // "key" or "jwt"
	Targets []Target
}

// Auth is how callers authenticate: an API key (Keys) or a producer
// token (JWT), each sent as Authorization: Bearer. At least one must be
// set; a request is never let in without either.
type Auth struct {
	Keys *KeyFile
	JWT  *JWTVerifier
}

// authenticate checks the request's bearer credential: a key when it
// starts with KeyPrefix, else a token. Missing or wrong credentials are
// 401 with a challenge, a token without the push scope 403.
func (a Auth) authenticate(r *http.Request) (Identity, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Identity{}, unauthorized("no credentials: send Authorization: Bearer <key or token>")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return Identity{}, unauthorized("want Authorization: Bearer <key or token>")
	}
	if strings.HasPrefix(cred, KeyPrefix) {
		return a.key(cred)
	}
	if a.JWT == nil {
		return Identity{}, invalidToken("not an API key of this server (tokens are not taken here)")
	}
	return a.JWT.verify(cred)
}

func (a Auth) key(cred string) (Identity, *apiError) {
	if a.Keys == nil {
		return Identity{}, invalidToken("API keys are not taken here")
	}
	e, ok := a.Keys.lookup(cred)
	if !ok {
		return Identity{}, invalidToken("not an API key of this server")
	}
	return Identity{Name: e.Name, Via: "key", Targets: e.Targets}, nil
}

// mayPush refuses a push id's target its identity does not cover (403).
func (id Identity) mayPush(kind TargetKind, name string) *apiError {
	if allows(id.Targets, kind, name) {
		return nil
	}
	switch kind {
	case TargetSession:
		return forbidden("%s %s may not push to session %s", id.Via, id.Name, name)
	case TargetGroup:
		return forbidden("%s %s may not push to group %s", id.Via, id.Name, name)
	}
	return forbidden("%s %s may not broadcast (push to all): it needs the target all", id.Via, id.Name)
}
