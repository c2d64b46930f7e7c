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
// The package depends on nats.go only, so producers can write dead letters
// (an offline session) without pulling in the edge.
package dlq
