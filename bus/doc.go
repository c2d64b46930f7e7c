// Package bus is the NATS side of an edge node: it connects to NATS (or
// starts an embedded server), subscribes once per connected session to
// <prefix>.<session>.*, hands each push to the session's connection
// without ever blocking on it, answers producers' acknowledgements, writes
// dead letters, and runs the cross-node takeover of a session.
//
// Subjects and headers are the public contract of docs/pushing.md: a push for
// session S is published to <prefix>.S.high or <prefix>.S.low; control for
// S (takeover announcements, edge nodes only) to <prefix>.S.ctl.
//
// bus is the edge node's NATS adapter, and the one library that sees both
// sides: it imports edge (through its handles, hooks and sink), registry,
// dlq, the NATS contract (protocol), the vocabulary (push), nats.go and
// nats-server; edge never imports it. What other services import — the
// producer client (producer), the backend helper (backend) and the
// contract (protocol) — lives beside it, not in it, and none of them
// imports bus. It imports neither fx nor Prometheus: the composition root
// (cmd/edge/app) wires it (tests/imports_test.go keeps these rules).
package bus
