// The client's logic against a scripted socket: receipts, dedupe, the
// close reasons' decisions, backoff, the token callback, requests.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { ceiling, CloseError, connect, DisconnectedError, refreshTime, RequestError, tokenExpiry, Type } from "../src/index.js";
import { ScriptedSocket as S } from "./scripted.js";

const until = S.until;
const fast = { baseDelay: 1, maxDelay: 4 };

function client(options = {}) {
  const c = connect("ws://edge.test/ws?app=demo", { WebSocket: S, reconnect: fast, onError() {}, ...options });
  return c;
}

beforeEach(() => S.reset());

test("backoff ceilings double from the base up to the cap", () => {
  assert.deepEqual([0, 1, 2, 3, 10, 100].map((n) => ceiling(n, 500, 30000)), [500, 1000, 2000, 4000, 30000, 30000]);
});

test("pushes reach onPush in order, each push id once; flagged ones are confirmed in one frame", async () => {
  const got = [];
  const c = client({ onPush: (p) => { got.push(`${p.id}:${p.priority}:${p.text()}`); } });
  const s = await S.nth(0);
  s.welcome();
  s.serve({ type: Type.push, id: "a", wantsReceipt: true, payload: "1" });
  s.serve({ type: Type.push, id: "b", priority: "low", payload: "2" });
  s.serve({ type: Type.push, id: "a", wantsReceipt: true, payload: "1" }); // a repeat
  s.serve({ type: Type.push, id: "c", wantsReceipt: true, payload: "3" });
  await until(() => s.receipts().length === 3, "receipts");
  assert.deepEqual(got, ["a:high:1", "b:low:2", "c:high:3"]);
  assert.deepEqual(s.receipts(), ["a", "a", "c"], "the repeat of a is confirmed again; b asked for no receipt");
  assert.equal(s.sent.filter((f) => f.type === Type.receipt).length, 1, "one receipt frame for the batch");
  assert.equal(c.duplicates, 1);
  await c.close();
});

test("an async onPush is confirmed after it resolves; one that throws is not, and its repeat is shown", async () => {
  let release;
  const held = new Promise((r) => { release = r; });
  const got = [];
  let fail = true;
  const c = client({
    onPush: async (p) => {
      got.push(p.id);
      if (p.id === "slow") await held;
      if (p.id === "bad" && fail) { fail = false; throw new Error("boom"); }
    },
  });
  const s = await S.nth(0);
  s.welcome();
  s.serve({ type: Type.push, id: "slow", wantsReceipt: true });
  await until(() => got.length === 1, "slow delivered");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(s.receipts(), [], "not confirmed while the handler runs");
  release();
  await until(() => s.receipts().length === 1, "slow confirmed");
  s.serve({ type: Type.push, id: "bad", wantsReceipt: true });
  s.serve({ type: Type.push, id: "bad", wantsReceipt: true });
  await until(() => s.receipts().length === 2, "the repeat of bad confirmed");
  assert.deepEqual(got, ["slow", "bad", "bad"]);
  await c.close();
});

test("manual receipts: confirm batches ids; a repeat is confirmed again only once the app confirmed it", async () => {
  const c = client({ receipts: "manual", onPush() {} });
  const s = await S.nth(0);
  s.welcome();
  s.serve({ type: Type.push, id: "m1", wantsReceipt: true });
  s.serve({ type: Type.push, id: "m1", wantsReceipt: true });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(s.receipts(), []);
  c.confirm("m1", "m2");
  await until(() => s.receipts().length === 2, "confirmed");
  s.serve({ type: Type.push, id: "m1", wantsReceipt: true });
  await until(() => s.receipts().length === 3, "the repeat confirmed again");
  assert.throws(() => c.confirm(""), TypeError);
  await c.close();
});

test("receipts confirmed between connections go out on the next one", async () => {
  let confirmed = 0;
  const c = client({ onPush: async () => { await new Promise((r) => setTimeout(r, 30)); }, onReceipt: (ids) => { confirmed += ids.length; } });
  const s0 = await S.nth(0);
  s0.welcome();
  s0.serve({ type: Type.push, id: "late", wantsReceipt: true });
  s0.end("shutdown", 1001);
  const s1 = await S.nth(1);
  s1.welcome("s", "n2");
  await until(() => confirmed === 1, "the receipt");
  assert.deepEqual(s1.receipts(), ["late"]);
  await c.close();
});

for (const reason of ["shutdown", "idle", "too_slow", "overloaded", "some_new_reason", null]) {
  test(`after ${reason ?? "network loss"} the client reconnects, with a fresh token and the URL's own parameters`, async () => {
    let minted = 0;
    const states = [];
    const c = client({ token: async () => `t${++minted}`, onState: (st) => states.push(st) });
    (await S.nth(0)).welcome();
    (await S.nth(0)).end(reason);
    const s1 = await S.nth(1);
    s1.welcome("s", "n2");
    await until(() => c.state === "connected", "reconnected");
    assert.equal(new URL(s1.url).searchParams.get("token"), "t2");
    assert.equal(new URL(s1.url).searchParams.get("app"), "demo");
    const d = states.find((st) => st.state === "disconnected");
    assert.equal(d.reason, reason ?? "network");
    assert.ok(d.delay >= 0 && d.delay < fast.baseDelay);
    assert.equal(c.node, "n2");
    await c.close();
  });
}

for (const reason of ["replaced", "auth", "revoked", "protocol", "normal"]) {
  test(`after ${reason} the client stops and says why`, async () => {
    const c = client();
    (await S.nth(0)).welcome();
    (await S.nth(0)).end(reason, 4000);
    const end = await c.closed;
    assert.equal(end.reason, reason);
    assert.equal(end.message, `${reason} for the test`);
    assert.equal(c.state, "stopped");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(S.all.length, 1, "no reconnect");
  });
}

test("the reason comes from the WebSocket close when no close frame came", async () => {
  const c = client();
  const s = await S.nth(0);
  s.welcome();
  s.readyState = 3;
  s.onclose({ code: 4000, reason: "" });
  assert.equal((await c.closed).reason, "replaced");
});

test("token_expired reconnects with a token callback, stops with a fixed token", async () => {
  const fixed = client({ token: "fixed" });
  (await S.nth(0)).welcome();
  (await S.nth(0)).end("token_expired");
  assert.equal((await fixed.closed).reason, "token_expired");
  S.reset();
  const refreshed = client({ token: () => "fresh" });
  (await S.nth(0)).welcome();
  (await S.nth(0)).end("token_expired");
  (await S.nth(1)).welcome();
  await until(() => refreshed.state === "connected", "reconnected");
  await refreshed.close();
});

test("auth before the welcome stops; failed attempts retry until maxAttempts", async () => {
  const c = client();
  (await S.nth(0)).end("auth", 4001);
  assert.deepEqual(await c.closed, { reason: "auth", message: "auth for the test" });
  await assert.rejects(c.whenConnected(), (err) => err instanceof CloseError && err.reason === "auth");
  S.reset();
  const g = client({ reconnect: { ...fast, maxAttempts: 3 } });
  for (let i = 0; i < 3; i++) (await S.nth(i)).end(null);
  assert.equal((await g.closed).reason, "gave_up");
  assert.equal(S.all.length, 3);
});

test("reconnect: false stops after the first connection ends", async () => {
  const c = client({ reconnect: false });
  (await S.nth(0)).welcome();
  (await S.nth(0)).end("shutdown", 1001);
  assert.equal((await c.closed).reason, "shutdown");
});

test("close sends queued receipts and a close frame, and stops", async () => {
  const c = client({ onPush() {}, receiptDelay: 1000 });
  const s = await S.nth(0);
  s.welcome();
  s.serve({ type: Type.push, id: "x", wantsReceipt: true });
  await until(() => c.duplicates === 0 && s.sent.length === 0, "delivered");
  await new Promise((r) => setTimeout(r, 5));
  await c.close();
  assert.deepEqual(s.sent.map((f) => f.type), [Type.receipt, Type.close]);
  assert.equal(s.closedWith, 1000);
  assert.deepEqual(await c.closed, { reason: "normal", message: "closed by the application" });
});

test("a request yields its frames and ends; an error frame throws; break and abort send cancel", async () => {
  const c = client();
  const s = await S.nth(0);
  s.welcome();
  await c.whenConnected();
  const reply = async (answer) => {
    await until(() => s.sent.some((f) => f.type === Type.request && !f.answered), "a request");
    const req = s.sent.find((f) => f.type === Type.request && !f.answered);
    req.answered = true;
    answer(req);
  };
  const run = async (it) => { const got = []; for await (const m of it) got.push(m.text()); return got; };

  let p = run(c.request("feed", "3"));
  await reply((r) => {
    assert.equal(r.name, "feed");
    assert.equal(new TextDecoder().decode(r.payload), "3");
    s.serve({ type: Type.response, id: r.id, payload: "one" });
    s.serve({ type: Type.response, id: r.id, payload: "two" });
    s.serve({ type: Type.end, id: r.id });
  });
  assert.deepEqual(await p, ["one", "two"]);

  p = run(c.request("nope"));
  await reply((r) => s.serve({ type: Type.error, id: r.id, name: "no_handler", payload: "no backend serves nope" }));
  await assert.rejects(p, (err) => err instanceof RequestError && err.code === "no_handler" && err.detail === "no backend serves nope");

  let first;
  p = (async () => { for await (const m of c.request("ticks")) { first = m.text(); break; } })();
  await reply((r) => s.serve({ type: Type.response, id: r.id, payload: "tick" }));
  await p;
  assert.equal(first, "tick");
  assert.equal(s.sent.at(-1).type, Type.cancel);

  const ac = new AbortController();
  p = run(c.request("ticks", undefined, { signal: ac.signal }));
  await reply(() => ac.abort(new Error("enough")));
  await assert.rejects(p, /enough/);
  assert.equal(s.sent.at(-1).type, Type.cancel);
  await c.close();
});

test("a request in flight when the connection ends, or made between connections, throws DisconnectedError", async () => {
  const c = client({ reconnect: { baseDelay: 1000, maxDelay: 1000 }, random: () => 0.5 });
  const s = await S.nth(0);
  s.welcome();
  const p = (async () => { for await (const _ of c.request("slow")); })();
  await until(() => s.sent.some((f) => f.type === Type.request), "the request");
  s.end("shutdown", 1001);
  await assert.rejects(p, (err) => err instanceof DisconnectedError && err.cause.reason === "shutdown");
  await assert.rejects((async () => { for await (const _ of c.request("x")); })(), DisconnectedError);
  await c.close();
});

test("error frames about the connection go to onError", async () => {
  const errors = [];
  const c = client({ onError: (e) => errors.push(e) });
  const s = await S.nth(0);
  s.welcome();
  s.serve({ type: Type.error, name: "unexpected_frame", payload: "receipt" });
  assert.equal(errors[0].code, "unexpected_frame");
  await c.close();
});

test("without a WebSocket the client says how to get one", () => {
  const global = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  try {
    assert.throws(() => connect("ws://x/", { reconnect: false }), /experimental-websocket/);
  } finally {
    globalThis.WebSocket = global;
  }
  assert.throws(() => connect("ftp://x/", { WebSocket: S }), TypeError);
});

test("a connect that fails with an error event and no close event (Node's WebSocket) is retried", async () => {
  const c = client();
  const s0 = await S.nth(0);
  s0.readyState = 3;
  s0.onerror({});
  (await S.nth(1)).welcome();
  await until(() => c.state === "connected", "connected on the second attempt");
  await c.close();
});

test("the dedupe window forgets the oldest id first, and a forgotten id is new again", async () => {
  const { DedupeWindow } = await import("../src/dedupe.js");
  const w = new DedupeWindow(3);
  for (const id of ["a", "b", "c"]) w.add(id);
  w.forget("b"); // its handler failed
  assert.ok(!w.has("b"));
  w.add("b"); // a new slot, evicting a; b's old slot is stale
  assert.deepEqual(["a", "b", "c"].map((id) => w.has(id)), [false, true, true]);
  w.add("d"); // reuses b's old slot: b stays
  w.add("e"); // evicts c, the oldest
  assert.deepEqual(["b", "c", "d", "e"].map((id) => w.has(id)), [true, false, true, true]);
  w.confirm("e");
  assert.ok(w.confirmed("e") && !w.confirmed("b"));
  const none = new DedupeWindow(0);
  none.add("x");
  assert.ok(!none.has("x"));
});

test("an onError that throws does not stop later pushes", async () => {
  const got = [];
  const c = client({
    onPush: (p) => { got.push(p.id); if (p.id === "1") throw new Error("handler"); },
    onError: () => { throw new Error("onError too"); },
  });
  const s = await S.nth(0);
  s.welcome();
  const quiet = console.error;
  console.error = () => {};
  try {
    s.serve({ type: Type.push, id: "1" });
    s.serve({ type: Type.push, id: "2" });
    await until(() => got.length === 2, "both pushes");
  } finally {
    console.error = quiet;
  }
  await c.close();
});

test("an onReceipt that throws is reported; the receipts behind it still go, and close does not throw", async () => {
  const errors = [];
  const c = client({ receipts: "manual", onPush() {}, onError: (e) => errors.push(e), onReceipt() { throw new Error("onReceipt boom"); } });
  const s = await S.nth(0);
  s.welcome();
  c.confirm(..."x".repeat(300).split("").map((_, i) => `${i}`.padStart(250, "r"))); // two frames' worth
  await until(() => s.receipts().length === 300, "every receipt sent");
  assert.ok(errors.some((e) => e.message === "onReceipt boom"), "reported to onError");
  c.confirm("last");
  await c.close();
  assert.equal(s.receipts().at(-1), "last");
});

test("a token callback that never settles counts as a failed attempt after dialTimeout; the next attempt calls it again", async () => {
  let calls = 0;
  const c = client({ dialTimeout: 50, token: () => (++calls === 1 ? new Promise(() => {}) : "t2") });
  const s = await S.nth(0);
  assert.equal(calls, 2);
  assert.equal(new URL(s.url).searchParams.get("token"), "t2");
  s.welcome();
  await c.whenConnected();
  await c.close();
});

test("close while a connect is in flight closes its socket at once, before any welcome", async () => {
  const c = client();
  const s = await S.nth(0);
  await c.close();
  assert.notEqual(s.closedWith, null, "the socket being dialed is closed");
  assert.equal(S.all.length, 1, "no other attempt");
});

test("receipt frames stay within 8 KiB of ids, as the Go client's, for edges whose frame size limit is set low", async () => {
  const c = client({ receipts: "manual", onPush() {} });
  const s = await S.nth(0);
  c.confirm(...Array.from({ length: 1000 }, (_, i) => `${i}`.padStart(250, "q"))); // queued while connecting
  s.welcome();
  await until(() => s.receipts().length === 1000, "every receipt sent");
  const sizes = s.sent.filter((f) => f.type === Type.receipt).map((f) => f.payload.length);
  assert.ok(Math.max(...sizes) <= 8192, `receipt payloads of ${Math.max(...sizes)} bytes; want at most 8192`);
  await c.close();
});

/** fakeJWT is an unsigned token shaped as a JWT whose exp is at ms since the epoch. */
function fakeJWT(sub, expMs) {
  const b64 = (o) => btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${b64({ alg: "none" })}.${b64({ sub, exp: expMs / 1000 })}.sig`;
}

test("tokenExpiry reads a JWT's exp; refreshTime is 80% of the life or 30 s before exp, not before half of it", () => {
  assert.equal(tokenExpiry(fakeJWT("s", 1700000000500)), 1700000000500);
  for (const bad of ["", "a.b", "a.!!.c", "e30.e30.c", undefined]) assert.equal(tokenExpiry(bad), null, String(bad));
  const h = 3600000;
  assert.equal(refreshTime(0, h), 0.8 * h);
  assert.equal(refreshTime(0, 100000), 70000);
  assert.equal(refreshTime(0, 40000), 20000);
  assert.equal(refreshTime(1000, 2000), 1500);
});

test("with a token callback the client sends a refresh frame with a fresh token ahead of each exp", async () => {
  let minted = 0;
  const c = client({ token: () => fakeJWT(`t${++minted}`, Date.now() + 200) });
  const s = await S.nth(0);
  s.welcome();
  const refreshes = () => s.sent.filter((f) => f.type === Type.refresh).map((f) => JSON.parse(atob(new TextDecoder().decode(f.payload).split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub);
  await until(() => refreshes().length >= 2, "two refreshes");
  assert.deepEqual(refreshes().slice(0, 2), ["t2", "t3"], "each refresh carries the callback's next token");
  assert.equal(S.all.length, 1, "on the one connection");
  await c.close();
});

test("a refresh whose callback fails is retried until the token expires; after token_expired the client reconnects with a fresh one", async () => {
  let minted = 0;
  const errors = [];
  const c = client({
    onError: (e) => errors.push(e),
    token: () => {
      if (++minted === 2) throw new Error("token service down");
      return fakeJWT(`t${minted}`, Date.now() + (minted === 1 ? 100 : 3600000));
    },
  });
  const s0 = await S.nth(0);
  s0.welcome();
  await until(() => errors.length === 1, "the failed refresh reported");
  assert.equal(s0.sent.filter((f) => f.type === Type.refresh).length, 0);
  s0.end("token_expired");
  const s1 = await S.nth(1);
  assert.equal(tokenExpiry(new URL(s1.url).searchParams.get("token")) > Date.now() + 60000, true, "the reconnect's token is a fresh one");
  await c.close();
});
