// ScriptedSocket is a WebSocket whose server side the test plays: it
// records what the client sends and delivers the frames the test scripts.
// It checks the client's logic (batching, dedupe, reconnect decisions)
// where a real edge cannot be made to misbehave; test/edge.test.js runs
// the client against a real one.
import { decode, decodeReceipt, encode, Type } from "../src/frames.js";

export class ScriptedSocket {
  static all = [];
  static waiting = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = []; // decoded frames from the client
    this.closedWith = null;
    ScriptedSocket.all.push(this);
    for (const w of ScriptedSocket.waiting.splice(0)) w(this);
  }

  /** next resolves with the n-th socket made (from 0), once the client makes it. */
  static async nth(n) {
    while (ScriptedSocket.all.length <= n) await new Promise((r) => ScriptedSocket.waiting.push(r));
    return ScriptedSocket.all[n];
  }

  static reset() {
    ScriptedSocket.all = [];
    ScriptedSocket.waiting = [];
  }

  /** welcome opens the socket and says welcome as session on node. */
  welcome(session = "s", node = "n1") {
    this.readyState = 1;
    this.serve({ type: Type.welcome, id: session, name: node });
  }

  serve(f) {
    const b = encode(f);
    this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  }

  /** end closes from the server side: a close frame with reason (if any), then the socket. */
  end(reason, code = 1006) {
    if (reason) this.serve({ type: Type.close, name: reason, payload: `${reason} for the test` });
    this.readyState = 3;
    this.onclose?.({ code, reason: reason ?? "" });
  }

  send(data) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(decode(data));
  }

  close(code = 1005, reason = "") {
    if (this.readyState === 3) return;
    this.closedWith = code;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  /** receipts is every push id the client confirmed on this socket, in order. */
  receipts() {
    return this.sent.filter((f) => f.type === Type.receipt).flatMap((f) => decodeReceipt(f.payload));
  }

  /** until waits for cond, checking it after every turn of the event loop, for up to 10 s. */
  static async until(cond, what) {
    const end = Date.now() + 10000;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}
