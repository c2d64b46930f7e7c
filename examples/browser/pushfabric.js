// pushfabric.js reads and writes pushfabric frames over a WHATWG WebSocket
// (every browser; Node.js with --experimental-websocket). The format is in
// docs/protocol.md.
const utf8 = new TextEncoder();
const text = new TextDecoder();

export const Type = {
  push: 1, request: 2, response: 3, end: 4, error: 5, close: 6,
  ping: 7, pong: 8, hello: 9, welcome: 10, cancel: 11,
};

// decode turns one binary WebSocket message into a frame object.
export function decode(data) {
  const b = new Uint8Array(data);
  if (b.length < 6 || b[0] !== 1) throw new Error("not a pushfabric v1 frame");
  let i = 3;
  const field = () => {
    const n = b[i];
    const s = text.decode(b.subarray(i + 1, i + 1 + n));
    i += 1 + n;
    return s;
  };
  const type = b[1];
  const priority = b[2] === 1 ? "low" : "high";
  const id = field(), name = field(), contentType = field();
  return { type, priority, id, name, contentType, payload: b.subarray(i) };
}

// encode builds a frame to send: a request, or a cancel.
export function encode({ type, id = "", name = "", contentType = "", payload = new Uint8Array() }) {
  const fields = [id, name, contentType].map((s) => utf8.encode(s));
  if (fields.some((f) => f.length > 255)) throw new Error("id, name and content type are at most 255 bytes");
  const out = new Uint8Array(6 + fields.reduce((n, f) => n + f.length, 0) + payload.length);
  out.set([1, type, 0]);
  let i = 3;
  for (const f of fields) {
    out[i] = f.length;
    out.set(f, i + 1);
    i += 1 + f.length;
  }
  out.set(payload, i);
  return out;
}
