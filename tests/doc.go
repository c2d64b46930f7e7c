// Package tests holds pushfabric's end-to-end tests: real nats-server
// instances (one, or a three-node cluster on loopback), edge nodes in the
// test process or as the real binary, and real clients over real sockets.
// Every test counts pushes: delivered + dead-lettered = published.
//
// Tests may import every package of the module; nothing but tests imports
// tests/... (imports_test.go keeps that and the other house rules).
package tests
