// The client against a real edge on a real NATS server, driven by
// tests/jsclient_test.go (go test ./tests -run TestJSClient), which starts
// them and a bridge through which these tests publish pushes, restart the
// node and take sessions over. Without the bridge they skip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, DisconnectedError, RequestError } from "../src/index.js";

const bridge = process.env.PUSHFABRIC_BRIDGE;
const edgeURL = process.env.PUSHFABRIC_EDGE_WS;
const skip = !bridge && "PUSHFABRIC_BRIDGE is not set: go test ./tests -run TestJSClient runs these against a real edge";
const fast = { baseDelay: 20, maxDelay: 200 };

async function call(method, path, body) {
  const r = await fetch(bridge + path, { method, body: body && JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return r.headers.get("content-type") === "application/json" ? JSON.parse(text) : text;
}

const publish = (session, id, priority = "high", payload = id, ack) => call("POST", "/push", { session, id, priority, payload, ack });
const tokenFor = (session) => () => call("GET", `/token?session=${encodeURIComponent(session)}`);

/** until waits for cond, for up to 30 s. */
async function until(cond, what) {
  const end = Date.now() + 30000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** open connects as session, recording pushes and states; closed after the test. */
function open(t, session, options = {}) {
  const got = [];
  const states = [];
  const c = connect(edgeURL, {
    token: tokenFor(session), reconnect: fast,
    onPush: (p) => { got.push(p); }, onState: (st) => states.push(st), ...options,
  });
  t.after(() => c.close());
  return { c, got, states };
}

test("pushes high and low arrive each once, in order within each priority", { skip }, async (t) => {
  const { c, got } = open(t, "js-order");
  await c.whenConnected();
  const sent = [["h1", "high"], ["l1", "low"], ["h2", "high"], ["l2", "low"], ["h3", "high"]];
  for (const [id, prio] of sent) {
    const ack = await publish("js-order", id, prio, `payload ${id}`);
    assert.equal(ack.status, "enqueued", JSON.stringify(ack));
  }
  await until(() => got.length === sent.length, "every push");
  for (const prio of ["high", "low"]) {
    assert.deepEqual(got.filter((p) => p.priority === prio).map((p) => p.id), sent.filter(([, p]) => p === prio).map(([id]) => id));
  }
  assert.equal(got.find((p) => p.id === "l2").text(), "payload l2");
  assert.equal(c.session, "js-order");
});

test("a push published twice with one id is shown once", { skip }, async (t) => {
  const { c, got } = open(t, "js-dedupe");
  await c.whenConnected();
  await publish("js-dedupe", "d1");
  await publish("js-dedupe", "d1");
  await publish("js-dedupe", "d2");
  await until(() => got.length === 2 && c.duplicates === 1, "d1 once and d2");
  assert.deepEqual(got.map((p) => p.id), ["d1", "d2"]);
});

test("after the node shuts down the client reconnects to the next, with a fresh token; no push is lost or shown twice", { skip }, async (t) => {
  let minted = 0;
  const session = "js-roamer";
  const { c, got, states } = open(t, session, { token: () => { minted++; return tokenFor(session)(); } });
  const first = await c.whenConnected();
  for (let i = 1; i <= 20; i++) await publish(session, `before-${i}`, i % 3 ? "high" : "low");
  const { node } = await call("POST", "/restart"); // the node drains the pushes queued for the client, then closes it
  await until(() => c.state === "connected" && c.node === node, `connected to ${node}`).catch((err) => {
    throw new Error(`${err.message}; the client's states: ${JSON.stringify(states)}`);
  });
  assert.notEqual(first.node, node);
  const disc = states.find((st) => st.state === "disconnected");
  assert.equal(disc.reason, "shutdown");
  for (let i = 1; i <= 20; i++) {
    const ack = await publish(session, `after-${i}`);
    assert.equal(ack.node, node, JSON.stringify(ack));
  }
  await publish(session, "before-20"); // a producer sending again one it was unsure of
  const want = [...Array(20)].flatMap((_, i) => [`before-${i + 1}`, `after-${i + 1}`]);
  await until(() => got.length === want.length && c.duplicates === 1, "every push once");
  assert.deepEqual(got.map((p) => p.id).sort(), want.sort());
  const connects = states.filter((st) => st.state === "connecting").length;
  assert.equal(minted, connects, "a token for every connect");
});

test("replaced: the client stops, says so, and does not reconnect", { skip }, async (t) => {
  const { c, states } = open(t, "js-replaced");
  await c.whenConnected();
  await call("POST", "/takeover?session=js-replaced");
  const end = await c.closed;
  assert.equal(end.reason, "replaced");
  await new Promise((r) => setTimeout(r, 3 * fast.maxDelay));
  assert.equal(states.filter((st) => st.state === "connecting").length, 1);
  assert.equal(c.state, "stopped");
});

test("revoked: a kick stops the client, which says so and does not reconnect; a second kick finds it offline", { skip }, async (t) => {
  const { c, states } = open(t, "js-revoked");
  await c.whenConnected();
  const kicked = await call("POST", "/kick?session=js-revoked");
  assert.equal(kicked.closed, true, JSON.stringify(kicked));
  const end = await c.closed;
  assert.equal(end.reason, "revoked");
  assert.equal(c.state, "stopped");
  assert.equal(states.filter((st) => st.state === "connecting").length, 1);
  await assert.rejects(call("POST", "/kick?session=js-revoked"), /no responders/, "a second kick finds it offline");
});

test("auth: a bad token stops the client with the edge's reason", { skip }, async (t) => {
  const { c } = open(t, "js-auth", { token: "not a token" });
  const end = await c.closed;
  assert.equal(end.reason, "auth");
  assert.ok(end.message.length > 0, "the edge says why");
  await assert.rejects(c.whenConnected(), (err) => err.reason === "auth");
});

test("a streamed request yields every frame; a break cancels one on the edge", { skip }, async (t) => {
  const { c } = open(t, "js-requests");
  await c.whenConnected();
  const pages = [];
  for await (const m of c.request("feed", "3")) pages.push(m.text());
  assert.deepEqual(pages, [1, 2, 3].map((i) => `page ${i} of 3 for js-requests`));

  const before = await canceled();
  const seen = [];
  for await (const m of c.request("ticks")) {
    seen.push(m.text());
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen, ["tick 1", "tick 2"]);
  await canceledAbove(before);

  const ac = new AbortController();
  const aborted = (async () => { for await (const m of c.request("ticks", undefined, { signal: ac.signal })) if (m.text() === "tick 1") ac.abort(new Error("enough")); })();
  await assert.rejects(aborted, /enough/);
  await canceledAbove(before + 1);
});

test("error frames end requests with their code", { skip }, async (t) => {
  const { c } = open(t, "js-errors");
  await c.whenConnected();
  const drain = async (it) => { for await (const _ of it); };
  await assert.rejects(drain(c.request("nobody")), (err) => err instanceof RequestError && err.code === "no_handler");
  await assert.rejects(drain(c.request("refuse")), (err) => err instanceof RequestError && err.code === "not_today" && err.detail === "refused for the test");
  await c.close();
  await assert.rejects(drain(c.request("feed")), DisconnectedError);
});

test("a push asking for a receipt is confirmed after onPush returns, and the producer gets received", { skip }, async (t) => {
  const confirmed = [];
  const { c, got } = open(t, "js-receipts", { onReceipt: (ids) => confirmed.push(...ids) });
  await c.whenConnected();
  const acks = await Promise.all(["r1", "r2", "r3"].map((id) => publish("js-receipts", id, "high", id, "received")));
  for (const ack of acks) assert.equal(ack.status, "received", JSON.stringify(ack));
  assert.deepEqual(got.map((p) => [p.id, p.wantsReceipt]).sort(), [["r1", true], ["r2", true], ["r3", true]]);
  assert.deepEqual(confirmed.sort(), ["r1", "r2", "r3"]);
});

/** canceledAbove waits until the node has counted more than n response streams the client canceled. */
async function canceledAbove(n) {
  const end = Date.now() + 30000;
  while ((await canceled()) <= n) {
    if (Date.now() > end) throw new Error(`the edge counted ${n} canceled streams or fewer`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** canceled is the node's count of response streams the client canceled. */
async function canceled() {
  const text = await call("GET", "/metrics");
  const m = text.match(/^pushfabric_response_streams_total\{[^}]*outcome="canceled"[^}]*\} (\S+)$/m);
  return m ? Number(m[1]) : 0;
}

/** refreshes is the node's count of refresh frames with result. */
async function refreshes(result) {
  const text = await call("GET", "/metrics");
  const m = text.match(new RegExp(`^pushfabric_token_refreshes_total\\{[^}]*result="${result}"[^}]*\\} (\\S+)$`, "m"));
  return m ? Number(m[1]) : 0;
}

test("a token callback keeps the connection open past its first token's expiry, with refresh frames", { skip }, async (t) => {
  const before = await refreshes("ok");
  const minted = [];
  const short = async () => {
    const tok = await call("GET", "/token?session=js-refresh&ttl=2s");
    minted.push(tok);
    return tok;
  };
  const { c, got, states } = open(t, "js-refresh", { token: short });
  await c.whenConnected();
  // The edge would close the first connection at its token's exp plus the
  // 5 s leeway: wait past it, refreshing meanwhile.
  const firstUntil = JSON.parse(atob(minted[0].split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp * 1000 + 5000;
  const end = Date.now() + 30000;
  while (Date.now() < firstUntil + 500 || (await refreshes("ok")) < before + 2) {
    if (Date.now() > end) throw new Error("no refreshes counted");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(states.filter((s) => s.state === "disconnected").length, 0, "the first connection stayed up");
  await publish("js-refresh", "after-expiry");
  await until(() => got.some((p) => p.id === "after-expiry"), "the push after the first token's expiry");
});
