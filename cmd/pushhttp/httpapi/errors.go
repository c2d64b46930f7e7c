package httpapi

import (
	"fmt"
	"net/http"
)

// The error codes of an error answer's "error" field, one per kind of
// refusal; "message" says what exactly, for people.
const (
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "too_large"
	codeUnavailable      = "nats_unavailable"
	codeUnacknowledged   = "unacknowledged"
	codeInternal         = "internal"
)

// apiError is a request refused or failed: its status, its code and
// message (the JSON body), and the challenge of a 401 or 403.
type apiError struct {
	Status    int    `json:"-"`
	Code      string `json:"error"`
	Message   string `json:"message"`
	Index     *int   `json:"index,omitempty"` // a batch's push at fault
	ID        string `json:"id,omitempty"`    // the push's, when its outcome is not known
	challenge string // WWW-Authenticate
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge, Message: fmt.Sprintf(format, args...)}
}

// realm names pushhttp in its challenges.
const realm = `Bearer realm="pushhttp"`

// unauthorized: no credentials (RFC 6750 §3: a bare challenge).
func unauthorized(msg string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: msg, challenge: realm}
}

// invalidToken: credentials given, and not good here.
func invalidToken(msg string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: msg,
		challenge: realm + `, error="invalid_token"`}
}

// insufficientScope: a valid token of pushhttp's without the push scope.
func insufficientScope(name string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
		Message:   fmt.Sprintf("token of %s has no %q in its scope claim", name, Scope),
		challenge: realm + `, error="insufficient_scope", scope="` + Scope + `"`}
}

func forbidden(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: codeForbidden, Message: fmt.Sprintf(format, args...)}
}
