// Package registry is a node's session table: session id → the live
// connection that holds the session on this node.
//
// The table holds connections weakly (Go's weak package): it never keeps a
// closed connection alive. Owners still remove their entry explicitly when a
// connection closes, so the table's size is exact at all times; the weak
// reference is the safety net for a path that forgets. At most one
// connection holds a session: [Registry.Insert] returns the one it replaced
// so the caller can close it (takeover within a node).
//
// The package is the bottom of the edge node: edge, bus and dlq import it,
// and it imports none of them, nor fx or Prometheus; only the standard
// library, and of the module's packages at most the vocabulary (push) and
// internal/... (tests/imports_test.go).
package registry
