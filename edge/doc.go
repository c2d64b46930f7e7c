// Package edge holds client connections and writes pushes to them.
//
// A [Server] accepts WebSocket and framed-TCP connections, authenticates
// each one to a session and registers it in the node's session table. Every
// connection is an actor: its write side has exactly one owner at a time,
// which takes frames in a fixed order (control and close, then high-priority
// pushes, then low-priority pushes, then response frames), applies the
// fairness rule, the per-connection rate limit and push expiry, and writes
// everything that is ready in one system call. An idle connection holds no
// goroutine on its write side, no queue buffer and no read buffer.
//
// Producers in the process push through a [PushHandle] ([Conn] implements
// it): Push waits for room, TryPush never waits. What they push is an
// [Envelope]: the wire frame, its expiry and send time, and optionally a
// [Receipt], which is told once what became of the push: written, dead
// (with a push.Reason) or moved with its session to another node. Nothing
// is dropped without a trace: a push without a receipt that cannot be
// written goes to the [DeadLetterSink].
//
// Clients can send requests; a [Handler] answers with one frame, nothing or a
// stream (an iter.Seq2), whose frames go out behind pushes.
//
// Every limit on what a node takes (sessions, connects per second in all
// and per address, handshakes in flight, memory of partly received frames)
// and on what one client sends (frames, bytes and requests per second,
// groups) is a [Config] field with a stated refusal, counted in
// [Stats].LimitRefusals.
//
// The package knows nothing of NATS: the bus feeds it through PushHandles
// found in the registry, and hears back through each push's receipt. It
// imports registry, edge/wire and the vocabulary (push); never nats.go,
// bus or dlq, nor fx or Prometheus, which the composition root
// (cmd/edge/app) brings (tests/imports_test.go keeps these rules).
package edge
