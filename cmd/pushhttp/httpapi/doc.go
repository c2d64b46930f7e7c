// Package httpapi is pushhttp's HTTP side: the routes that turn an HTTP
// request into a push (one session, a group, every connection, or a
// batch), the decoders of what a request carries (path, query, headers,
// a batch body), the answers and their status codes, and the two ways a
// caller authenticates (API keys kept hashed in a file, and JWTs signed
// with pushhttp's own secret). It pushes with the producer client, so a
// push sent over HTTP is parked and accounted for as any Go producer's
// (docs/http.md).
//
// Only commands and tests import it (it lives under cmd/); it links
// neither the edge server nor the bus (tests/imports_test.go).
package httpapi
