// Package dlq keeps pushes that could not be delivered: the JetStream
// stream PUSH_DLQ, the dead-letter message format, and a writer that never
// blocks the push path.
//
// A dead letter is the original push (payload and headers) published to
// dlq.<prefix>.<reason>.<session>.<priority> with headers saying why it
// died, where it was going and which node gave up (package protocol names them).
// Its Nats-Msg-Id is its Push-Dead-Id, minted once per death, so a retried
// write is absorbed by the stream's ten-minute dedupe window while a push
// that dies again — after a replay, a redelivery, or as another copy — is
// kept. The push's own Nats-* headers are kept renamed (Push-Orig-Nats-…),
// so JetStream never acts on them, and a letter too large for the server
// is trimmed to fit and says so (Push-Trimmed).
//
// The package imports nats.go and its JetStream API, the NATS contract
// (protocol, which names the stream and its subjects) and the vocabulary
// (push); never edge, bus, fx or Prometheus (tests/imports_test.go). So
// the producer client writes dead letters (an offline session) without
// pulling in the edge, and the composition root (cmd/edge/app) wires the
// writer and counts what it reports.
package dlq
