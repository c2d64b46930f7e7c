// The client: one session held across connections to pushfabric edges.

import { ceiling, DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY } from "./backoff.js";
import { DedupeWindow, DEFAULT_DEDUPE_WINDOW } from "./dedupe.js";
import { CloseError, DisconnectedError, reasonOf, RequestError, STOP_REASONS } from "./errors.js";
import { decode, encode, encodeReceipt, MAX_FIELD_LEN, Type } from "./frames.js";
import { Message } from "./message.js";
import { Call } from "./request.js";
import { refreshTime, tokenExpiry } from "./token.js";

const text = new TextDecoder();
const OPEN = 1; // WebSocket.OPEN
// A receipt frame carries at most this many payload bytes, as the Go
// client's: far below a node's frame size limit (1 MiB by default, and
// --max-frame-size may set it lower: a larger frame closes the connection
// protocol, which stops the client).
const MAX_RECEIPT_BYTES = 8 * 1024;
// The wait, in ms, before a refresh whose token callback failed is tried
// again (until the token expires: the edge then closes token_expired and
// the client reconnects).
const REFRESH_RETRY = 2000;

/**
 * connect starts a client holding a session on the edge at url (ws:// or
 * wss://, any path; http(s):// is taken as ws(s)://) and returns it at once:
 * the connection is made in the background, and options.onState tells of
 * it. See the README for the options.
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

function withDefaults(url, o) {
  const WS = o.WebSocket ?? globalThis.WebSocket;
  if (typeof WS !== "function") {
    throw new TypeError("no WebSocket: pass options.WebSocket (the ws package), or run Node with --experimental-websocket (Node 20) or Node 22+");
  }
  if (typeof url !== "function") checkURL(url);
  if (o.receipts !== undefined && o.receipts !== "auto" && o.receipts !== "manual") {
    throw new TypeError(`receipts: ${o.receipts}: want "auto" or "manual"`);
  }
  const r = o.reconnect === false ? null : (o.reconnect ?? {});
  return {
    url, WS, token: o.token, session: o.session, onPush: o.onPush, onState: o.onState, onError: o.onError,
    onReceipt: o.onReceipt, receipts: o.receipts ?? "auto", receiptDelay: o.receiptDelay ?? 5,
    dialTimeout: o.dialTimeout ?? 10000, random: o.random ?? Math.random,
    reconnect: r && { baseDelay: r.baseDelay ?? DEFAULT_BASE_DELAY, maxDelay: r.maxDelay ?? DEFAULT_MAX_DELAY, maxAttempts: r.maxAttempts ?? 0 },
    dedupeWindow: o.dedupeWindow ?? DEFAULT_DEDUPE_WINDOW,
  };
}

function checkURL(url) {
  const u = new URL(url);
  if (!["ws:", "wss:", "http:", "https:"].includes(u.protocol)) {
    throw new TypeError(`url ${url}: want ws://, wss://, http:// or https://`);
  }
}

/** closeOf is the CloseError of a WebSocket close event that no close frame came before. */
function closeOf(e) {
  const reason = reasonOf(e.code, e.reason);
  return new CloseError(reason, e.reason || (reason === "network" ? `the WebSocket closed with code ${e.code}` : ""));
}

/** within settles as p does, or rejects with a network CloseError after ms: a callback that hangs fails its attempt. */
function within(p, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CloseError("network", `${what} gave nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** stops reports whether err, which ended a connection or a connect, ends the client. */
function stops(err, refresh) {
  if (!(err instanceof CloseError)) return false;
  return STOP_REASONS.includes(err.reason) || (err.reason === "token_expired" && !refresh);
}

/**
 * Client holds a session across connections. It reconnects, with
 * exponential backoff and full jitter, after shutdown, idle, too_slow,
 * overloaded, a reason it does not know, network loss, and token_expired
 * when the token is a callback (which it also calls ahead of each token's
 * exp, for a refresh frame); it stops after replaced, auth, revoked,
 * protocol and normal, and closed resolves with the reason. Pushes are
 * handed to onPush one at a time, in order, each push id once within the
 * dedupe window.
 */
export class Client {
  #o;
  #seen;
  #conn = null; // the welcomed connection, null between them
  #dialing = null; // the connection being made, not yet welcomed
  #state = "connecting";
  #session = "";
  #node = "";
  #stopped = false;
  #chain = Promise.resolve(); // pushes being delivered, one after another
  #receipts = []; // push ids to confirm in the next receipt frame
  #receiptTimer = null;
  #calls = new Map(); // request id → Call, on the current connection
  #nextRequest = 0;
  #attempts = 0; // connect attempts over the client's life
  #retries = 0; // waits since the last connection that stayed up maxDelay
  #wake = null; // ends the current wait between attempts
  #waiters = []; // whenConnected promises
  #resolveClosed;
  #duplicates = 0;

  constructor(url, options) {
    this.#o = withDefaults(url, options);
    this.#seen = new DedupeWindow(this.#o.dedupeWindow);
    /** Resolves with { reason, message } when the client has stopped for good. */
    this.closed = new Promise((resolve) => { this.#resolveClosed = resolve; });
    this.#run().catch((err) => {
      this.#report(err);
      if (!this.#stopped) this.#stop(new CloseError("protocol", `client bug: ${err.message}`));
    });
  }

  /** "connecting", "connected", "disconnected" (waiting to reconnect) or "stopped". */
  get state() { return this.#state; }
  /** The session the server gave the latest connection. */
  get session() { return this.#session; }
  /** The node holding the session, "" between connections. */
  get node() { return this.#node; }
  /** How many pushes were dropped as repeats of a push id in the window. */
  get duplicates() { return this.#duplicates; }

  /**
   * whenConnected resolves with { session, node } once a connection is up
   * (at once if one is), and rejects with a CloseError if the client stops
   * first.
   */
  whenConnected() {
    if (this.#state === "connected") return Promise.resolve({ session: this.#session, node: this.#node });
    if (this.#stopped) return this.closed.then(({ reason, message }) => { throw new CloseError(reason, message); });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async #run() {
    let after = null; // what ended the previous connection, or failed the last attempt
    for (let failed = 0; !this.#stopped;) {
      if (after !== null && !(await this.#pause(after, failed))) return;
      let conn;
      try {
        conn = await this.#dial();
      } catch (err) {
        if (!this.#retry(err, ++failed)) return;
        after = err;
        continue;
      }
      failed = 0;
      after = await this.#hold(conn);
      if (!this.#retry(after, 0)) return;
    }
  }

  /** retry reports whether to connect again after err, else stops the client. */
  #retry(err, failed) {
    if (this.#stopped) return false;
    const e = err instanceof CloseError ? err : new CloseError("network", err?.message ?? String(err));
    const r = this.#o.reconnect;
    if (r === null || stops(e, typeof this.#o.token === "function")) return this.#stop(e);
    if (r.maxAttempts > 0 && failed >= r.maxAttempts) {
      return this.#stop(new CloseError("gave_up", `${failed} attempts failed; the last: ${e.message}`));
    }
    return true;
  }

  /** pause reports the wait before the next attempt and waits it out; false once stopped. */
  async #pause(after, failed) {
    const r = this.#o.reconnect;
    const wait = this.#o.random() * ceiling(this.#retries++, r.baseDelay, r.maxDelay);
    const e = after instanceof CloseError ? after : new CloseError("network", after?.message ?? String(after));
    this.#setState({ state: "disconnected", reason: e.reason, message: e.detail, attempt: failed, delay: wait });
    await new Promise((resolve) => {
      const t = setTimeout(resolve, wait);
      this.#wake = () => { clearTimeout(t); resolve(); };
    });
    this.#wake = null;
    return !this.#stopped;
  }

  /** dial makes one connect attempt and resolves with the welcomed connection. */
  async #dial() {
    const attempt = this.#attempts++;
    this.#setState({ state: "connecting", attempt });
    const o = this.#o;
    const url = typeof o.url === "function" ? await within(o.url(attempt), o.dialTimeout, "the url callback") : o.url;
    const token = typeof o.token === "function" ? await within(o.token(), o.dialTimeout, "the token callback") : o.token;
    if (this.#stopped) throw new CloseError("normal", "closed by the application");
    const ws = new this.#o.WS(this.#address(url, token));
    ws.binaryType = "arraybuffer";
    return new Promise((welcomed, refused) => this.#watch({ ws, token, welcomed, refused }));
  }

  /** address is url with the token (or development session) in its query; other parameters are kept. */
  #address(url, token) {
    const u = new URL(url);
    if (u.protocol === "http:") u.protocol = "ws:";
    if (u.protocol === "https:") u.protocol = "wss:";
    if (token) u.searchParams.set("token", token);
    if (this.#o.session) u.searchParams.set("session", this.#o.session);
    return u.href;
  }

  /**
   * watch wires a socket's events to the client. A close event ends the
   * connection; so does an error event not followed by one soon (Node's
   * WebSocket fires no close event for a connect that fails, or one closed
   * while connecting), and a dial timeout.
   */
  #watch(conn) {
    conn.closeFrame = null; // the server's close frame, if it sent one
    conn.ended = new Promise((resolve) => { conn.end = resolve; });
    let over = false;
    const finish = (err) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      try { conn.ws.close(); } catch { /* closed already */ }
      this.#ended(conn, conn.closeFrame ?? err);
    };
    const timer = setTimeout(() => finish(new CloseError("network", `no welcome within ${this.#o.dialTimeout} ms`)), this.#o.dialTimeout);
    conn.ws.onmessage = (e) => {
      if (!over && this.#frame(conn, e.data) === Type.welcome) clearTimeout(timer);
    };
    conn.ws.onerror = () => setTimeout(() => finish(new CloseError("network", "the WebSocket failed")), 100);
    conn.ws.onclose = (e) => finish(conn.lost ?? closeOf(e));
    conn.lose = (err) => { conn.lost = err; finish(err); };
    this.#dialing = conn;
  }

  /** hold keeps conn until it ends and resolves with why it ended. */
  async #hold(conn) {
    const up = Date.now();
    const end = await conn.ended;
    if (this.#o.reconnect && Date.now() - up >= this.#o.reconnect.maxDelay) this.#retries = 0;
    return end;
  }

  #ended(conn, err) {
    clearTimeout(conn.refreshTimer);
    if (this.#dialing === conn) this.#dialing = null;
    if (this.#conn !== conn) return conn.refused(err);
    this.#conn = null;
    this.#node = "";
    for (const call of this.#calls.values()) call.disconnected(err);
    this.#calls.clear();
    conn.end(err);
  }

  /** frame handles one message from the server; it returns the frame's type. */
  #frame(conn, data) {
    let f;
    try {
      f = decode(data);
    } catch (err) {
      this.#report(err);
      conn.lose(new CloseError("network", `a malformed frame from the server: ${err.message}`));
      return 0;
    }
    switch (f.type) {
      case Type.welcome: this.#welcome(conn, f); break;
      case Type.push: this.#chain = this.#chain.then(() => this.#deliver(f)).catch((err) => this.#report(err)); break;
      case Type.response: case Type.end: this.#calls.get(f.id)?.frame(f); break;
      case Type.error: this.#errorFrame(f); break;
      case Type.close: conn.closeFrame = new CloseError(f.name, text.decode(f.payload)); break;
      case Type.ping: this.#sendOn(conn, { type: Type.pong, payload: f.payload }); break;
    }
    return f.type;
  }

  #welcome(conn, f) {
    if (this.#stopped) return conn.lose(new CloseError("normal", "closed by the application"));
    this.#conn = conn;
    this.#dialing = null;
    this.#session = f.id;
    this.#node = f.name;
    this.#setState({ state: "connected", session: f.id, node: f.name });
    for (const w of this.#waiters.splice(0)) w.resolve({ session: f.id, node: f.name });
    if (this.#receipts.length > 0) this.#scheduleReceipts();
    if (typeof this.#o.token === "function") this.#scheduleRefresh(conn, conn.token, Date.now());
    conn.welcomed(conn);
  }

  /**
   * scheduleRefresh sends conn a refresh frame with a fresh token from the
   * token callback ahead of token's exp (refreshTime of when it was got),
   * and so on for each new token. A token without a readable exp is not
   * refreshed.
   */
  #scheduleRefresh(conn, token, got) {
    const exp = tokenExpiry(token);
    if (exp === null) return;
    conn.refreshTimer = setTimeout(() => this.#refresh(conn, token, exp), Math.max(0, refreshTime(got, exp) - Date.now()));
  }

  async #refresh(conn, token, exp) {
    let next;
    try {
      next = await within(Promise.resolve(this.#o.token()), this.#o.dialTimeout, "the token callback");
    } catch (err) {
      this.#report(err);
      if (this.#conn === conn && Date.now() + REFRESH_RETRY < exp) {
        conn.refreshTimer = setTimeout(() => this.#refresh(conn, token, exp), REFRESH_RETRY);
      }
      return;
    }
    if (this.#conn !== conn || this.#stopped) return;
    this.#sendOn(conn, { type: Type.refresh, payload: next });
    this.#scheduleRefresh(conn, next, Date.now());
  }

  #errorFrame(f) {
    const call = f.id && this.#calls.get(f.id);
    if (call) return call.frame(f);
    if (!f.id) this.#report(new RequestError(f.name, text.decode(f.payload)));
  }

  /** deliver hands a push to the application unless it is a repeat, then confirms it if asked to. */
  async #deliver(f) {
    if (this.#stopped) return;
    if (f.id && this.#seen.has(f.id)) {
      this.#duplicates++;
      if (f.wantsReceipt && this.#seen.confirmed(f.id)) this.#queueReceipt(f.id);
      return;
    }
    if (f.id) this.#seen.add(f.id);
    if (!this.#o.onPush) return;
    try {
      await this.#o.onPush(new Message(f));
    } catch (err) {
      if (f.id) this.#seen.forget(f.id); // not processed: a repeat is shown again
      return this.#report(err);
    }
    if (f.wantsReceipt && f.id && this.#o.receipts === "auto") this.confirm(f.id);
  }

  /**
   * confirm tells the edge the application has processed the pushes ids
   * (with receipts: "manual"; "auto" confirms each push once its onPush
   * returns). Receipts are batched: one frame goes out a few ms later for
   * every id confirmed meanwhile, on the current connection or the next.
   */
  confirm(...ids) {
    for (const id of ids) {
      if (typeof id !== "string" || id === "" || new TextEncoder().encode(id).length > MAX_FIELD_LEN) {
        throw new TypeError(`confirm: push id ${JSON.stringify(id)}: want 1 to ${MAX_FIELD_LEN} bytes`);
      }
    }
    for (const id of ids) {
      this.#seen.confirm(id);
      this.#queueReceipt(id);
    }
  }

  #queueReceipt(id) {
    if (this.#stopped) return;
    this.#receipts.push(id);
    this.#scheduleReceipts();
  }

  #scheduleReceipts() {
    if (this.#receiptTimer === null) {
      this.#receiptTimer = setTimeout(() => this.#flushReceipts(), this.#o.receiptDelay);
    }
  }

  /** flushReceipts sends the queued receipts; without a connection they wait for the next. */
  #flushReceipts() {
    this.#receiptTimer = null;
    const conn = this.#conn;
    if (conn === null || conn.ws.readyState !== OPEN) return;
    while (this.#receipts.length > 0) {
      let n = 0;
      for (let bytes = 0; n < this.#receipts.length; n++) {
        bytes += 1 + new TextEncoder().encode(this.#receipts[n]).length;
        if (bytes > MAX_RECEIPT_BYTES) break;
      }
      const ids = this.#receipts.splice(0, n);
      this.#sendOn(conn, { type: Type.receipt, payload: encodeReceipt(ids) });
      this.#tell(this.#o.onReceipt, ids);
    }
  }

  /**
   * request sends method with payload (a Uint8Array or a string) and
   * returns an async iterator of its response frames (Messages), ending
   * after the server's end frame. An error frame throws a RequestError; a
   * connection that ends first throws a DisconnectedError (requests are not
   * retried); options.signal aborts it. The request is sent when the
   * iteration starts; leaving the loop early or aborting sends cancel.
   */
  request(method, payload, options = {}) {
    const start = (call) => {
      const conn = this.#conn;
      if (conn === null || conn.ws.readyState !== OPEN) throw new DisconnectedError();
      const id = (++this.#nextRequest).toString(36);
      this.#calls.set(id, call);
      const send = (f) => this.#sendOn(conn, f);
      send({ type: Type.request, id, name: method, contentType: options.contentType ?? "", payload });
      return { id, send, unregister: () => this.#calls.get(id) === call && this.#calls.delete(id) };
    };
    return new Call(start, options.signal);
  }

  /**
   * close ends the client: it sends the receipts still queued and a close
   * frame, closes the socket (or the one being connected) and stops
   * reconnecting. closed then resolves
   * with reason "normal". It returns closed.
   */
  close() {
    if (this.#stopped) return this.closed;
    clearTimeout(this.#receiptTimer);
    this.#flushReceipts();
    const conn = this.#conn;
    this.#stop(new CloseError("normal", "closed by the application"));
    this.#dialing?.lose(new CloseError("normal", "closed by the application")); // else its welcome could take the session from a newer client
    if (conn !== null) {
      this.#sendOn(conn, { type: Type.close, name: "normal" });
      conn.ws.close(1000, "normal");
      conn.lose(new CloseError("normal", "closed by the application"));
    }
    this.#wake?.();
    return this.closed;
  }

  #stop(err) {
    this.#stopped = true;
    clearTimeout(this.#receiptTimer);
    for (const call of this.#calls.values()) call.disconnected(err);
    this.#calls.clear();
    this.#setState({ state: "stopped", reason: err.reason, message: err.detail });
    for (const w of this.#waiters.splice(0)) w.reject(err);
    this.#resolveClosed({ reason: err.reason, message: err.detail });
    return false;
  }

  #sendOn(conn, f) {
    if (conn.ws.readyState === OPEN) conn.ws.send(encode(f));
  }

  #setState(st) {
    this.#state = st.state;
    this.#tell(this.#o.onState, st);
  }

  /** tell calls the application's callback fn, if any, with arg; what it throws is reported. */
  #tell(fn, arg) {
    try {
      fn?.(arg);
    } catch (err) {
      this.#report(err);
    }
  }

  /** report tells onError (or the console) of err; it never throws. */
  #report(err) {
    try {
      if (this.#o.onError) return void this.#o.onError(err);
    } catch (thrown) {
      err = thrown;
    }
    console.error("pushfabric:", err);
  }
}
