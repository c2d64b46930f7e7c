// Publish one push from Node with the official NATS client, as pushfabric's
// Go producer client does: a request on push.<session>.<priority>, which
// the edge node holding the session acknowledges; when no node holds it,
// NATS answers "no responders" and the push is parked as an offline dead
// letter in PUSH_DLQ.
//
//   NATS_URL=nats://127.0.0.1:4222 node push.mjs alice high '{"invoice":42}'
//
// Optional: PUSH_CONTENT_TYPE, PUSH_ACK (written or received; default
// enqueued). Prints the acknowledgement as JSON; exits 0 when the push is
// enqueued, written or received, 1 when it is dead or on error.
import { connect, errors, headers, nuid } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

const prefix = "push"; // the edges' --prefix
const producer = "node-producer"; // names this producer in its dead letters (Push-Node)

// push publishes payload for session at priority ("high" or "low") and
// resolves to the acknowledgement, {status, reason, node, id}. It rejects
// when no answer came in time: the push is unacknowledged (the node
// holding it may have died); send it again with the same opts.id.
async function push(nc, session, priority, payload, opts = {}) {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(session) || session === "group" || session === "all") {
    throw new Error(`session ${JSON.stringify(session)}: want 1-128 of A-Z a-z 0-9 _ -, not group or all`);
  }
  if (priority !== "high" && priority !== "low") {
    throw new Error(`priority ${JSON.stringify(priority)}: want high or low`);
  }
  const subject = `${prefix}.${session}.${priority}`;
  const h = headers(); // keys are case-sensitive: exactly these spellings
  h.set("Push-Id", opts.id ?? nuid.next());
  h.set("Push-Sent-At", new Date().toISOString());
  if (opts.contentType) h.set("Content-Type", opts.contentType);
  if (opts.expires) h.set("Push-Expires", opts.expires.toISOString());
  if (opts.ack) h.set("Push-Ack", opts.ack);
  try {
    const reply = await nc.request(subject, payload, { headers: h, timeout: opts.timeout ?? 5000 });
    return reply.json();
  } catch (err) {
    if (!(err instanceof errors.RequestError && err.isNoResponders())) throw err;
    await deadLetter(nc, subject, session, priority, h, payload);
    return { status: "dead", reason: "offline", node: producer, id: h.get("Push-Id") };
  }
}

// deadLetter parks a push no node held in PUSH_DLQ, as the Go producer
// client does: the push's payload and headers plus the dead-letter
// headers, on dlq.<prefix>.offline.<session>.<priority>. The dead id is
// minted once and is the Nats-Msg-Id, so the stream stores a retried
// write once.
async function deadLetter(nc, subject, session, priority, pushHeaders, payload) {
  const h = headers();
  for (const key of pushHeaders.keys()) {
    for (const v of pushHeaders.values(key)) h.append(key, v);
  }
  const deadId = nuid.next();
  h.set("Push-Replay-Count", "0");
  h.set("Push-Reason", "offline");
  h.set("Push-Subject", subject);
  h.set("Push-Session", session);
  h.set("Push-Priority", priority);
  h.set("Push-Node", producer);
  h.set("Push-Dead-At", new Date().toISOString());
  h.set("Push-Dead-Id", deadId);
  const dlq = `dlq.${prefix}.offline.${session}.${priority}`;
  // Retried (same msgID) while the stream does not answer; a push that
  // still cannot be parked is an error, never dropped silently.
  await jetstream(nc).publish(dlq, payload, { headers: h, msgID: deadId, retries: 5, timeout: 5000 });
}

const [session, priority = "high", payload = "hello"] = process.argv.slice(2);
if (!session) {
  console.error("usage: node push.mjs <session> [high|low] [payload]");
  process.exit(2);
}
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
try {
  const ack = await push(nc, session, priority, payload, {
    contentType: process.env.PUSH_CONTENT_TYPE,
    ack: process.env.PUSH_ACK,
  });
  console.log(JSON.stringify(ack));
  process.exitCode = ack.status === "dead" ? 1 : 0;
} catch (err) {
  console.error(`push to ${session}: ${err.message}`);
  process.exitCode = 1;
} finally {
  await nc.drain();
}
