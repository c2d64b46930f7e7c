// The pushfabric frame format, version 1 (docs/protocol.md): encode and
// decode one frame, and a receipt frame's payload. It is the same format on
// both transports; a WebSocket message is one frame.

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** The frame format version this module reads and writes. */
export const VERSION = 1;

/** The smallest frame: version, type, flags and three empty strings. */
export const HEADER_LEN = 6;

/** The longest id, name or content type, in UTF-8 bytes. */
export const MAX_FIELD_LEN = 255;

/** Bit 2 of a push frame's flags: the producer asked for a receipt. */
export const FLAG_RECEIPT = 0x04;

/** Frame types, by name. */
export const Type = Object.freeze({
  push: 1, request: 2, response: 3, end: 4, error: 5, close: 6,
  ping: 7, pong: 8, hello: 9, welcome: 10, cancel: 11, receipt: 12, refresh: 13,
});

const MAX_TYPE = Type.refresh;
const typeNames = Object.fromEntries(Object.entries(Type).map(([k, v]) => [v, k]));

/** The name of frame type t ("push"), or "type(t)" for one this version does not know. */
export function typeName(t) {
  return typeNames[t] ?? `type(${t})`;
}

/** The error of bytes that are not a frame, or of a frame that cannot be encoded. */
export class FrameError extends Error {
  constructor(message) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * decode parses one frame: an ArrayBuffer, a typed array, or a string (a
 * WebSocket text message, read as its UTF-8 bytes). The payload is a view
 * of the input. Anything that is not a valid version-1 frame throws a
 * FrameError: another version, an unknown type, reserved flag bits (or the
 * receipt bit on a frame other than a push), a string that runs past the end.
 */
export function decode(data) {
  const b = bytesOf(data);
  if (b.length < HEADER_LEN) throw new FrameError(`${b.length} bytes, want at least ${HEADER_LEN}`);
  if (b[0] !== VERSION) throw new FrameError(`version ${b[0]}, want ${VERSION}`);
  const type = b[1], flags = b[2];
  if (type === 0 || type > MAX_TYPE) throw new FrameError(`unknown type ${type}`);
  if ((flags & ~0x07) !== 0 || (flags & 0x03) > 1 || ((flags & FLAG_RECEIPT) !== 0 && type !== Type.push)) {
    throw new FrameError(`flags 0x${flags.toString(16)} on a ${typeName(type)} frame`);
  }
  let i = 3;
  const field = (what) => {
    if (i >= b.length || i + 1 + b[i] > b.length) throw new FrameError(`${what} runs past the end`);
    const s = text.decode(b.subarray(i + 1, i + 1 + b[i]));
    i += 1 + b[i];
    return s;
  };
  const id = field("id"), name = field("name"), contentType = field("content type");
  return {
    type, priority: (flags & 0x03) === 1 ? "low" : "high", wantsReceipt: (flags & FLAG_RECEIPT) !== 0,
    id, name, contentType, payload: b.subarray(i),
  };
}

/**
 * encode builds one frame from { type, priority, wantsReceipt, id, name,
 * contentType, payload }; all but type are optional. priority is "high"
 * (the default) or "low"; payload a Uint8Array, an ArrayBuffer or a string
 * (sent as UTF-8). It throws a FrameError for a frame the format cannot
 * carry: an unknown type or priority, a receipt flag on a frame other than
 * a push, a string over 255 bytes.
 */
export function encode({ type, priority = "high", wantsReceipt = false, id = "", name = "", contentType = "", payload }) {
  if (!Number.isInteger(type) || type < 1 || type > MAX_TYPE) throw new FrameError(`unknown type ${type}`);
  let flags = priorityBits(priority);
  if (wantsReceipt) {
    if (type !== Type.push) throw new FrameError(`a ${typeName(type)} frame asking for a receipt`);
    flags |= FLAG_RECEIPT;
  }
  const fields = [["id", id], ["name", name], ["content type", contentType]].map(([what, s]) => {
    const f = utf8.encode(s);
    if (f.length > MAX_FIELD_LEN) throw new FrameError(`${what} longer than ${MAX_FIELD_LEN} bytes`);
    return f;
  });
  const body = payload === undefined ? new Uint8Array(0) : bytesOf(payload);
  const out = new Uint8Array(HEADER_LEN + fields.reduce((n, f) => n + f.length, 0) + body.length);
  out.set([VERSION, type, flags]);
  let i = 3;
  for (const f of fields) {
    out[i] = f.length;
    out.set(f, i + 1);
    i += 1 + f.length;
  }
  out.set(body, i);
  return out;
}

function priorityBits(priority) {
  switch (priority) {
    case "high": case 0: return 0;
    case "low": case 1: return 1;
  }
  throw new FrameError(`unknown priority ${priority}`);
}

/**
 * encodeReceipt is the payload of a receipt frame confirming ids: each id
 * as a length byte and its 1 to 255 UTF-8 bytes, one after another. It
 * throws a FrameError for no id, or an id empty or over 255 bytes.
 */
export function encodeReceipt(ids) {
  if (ids.length === 0) throw new FrameError("a receipt without push ids");
  const parts = ids.map((id) => {
    const b = utf8.encode(id);
    if (b.length === 0) throw new FrameError("an empty push id in a receipt");
    if (b.length > MAX_FIELD_LEN) throw new FrameError(`a receipt's push id longer than ${MAX_FIELD_LEN} bytes`);
    return b;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + 1 + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out[i] = p.length;
    out.set(p, i + 1);
    i += 1 + p.length;
  }
  return out;
}

/**
 * decodeReceipt reads the push ids of a receipt frame's payload, in order
 * (a repeat is kept). A payload that is not one or more well-formed ids
 * throws a FrameError.
 */
export function decodeReceipt(payload) {
  const b = bytesOf(payload);
  if (b.length === 0) throw new FrameError("a receipt without push ids");
  const ids = [];
  for (let i = 0; i < b.length; i += 1 + b[i]) {
    if (b[i] === 0) throw new FrameError("an empty push id in a receipt");
    if (i + 1 + b[i] > b.length) throw new FrameError(`receipt id ${ids.length + 1} runs past the end`);
    ids.push(text.decode(b.subarray(i + 1, i + 1 + b[i])));
  }
  return ids;
}

/** receiptFrame is a receipt frame confirming ids, ready to send. */
export function receiptFrame(ids) {
  return encode({ type: Type.receipt, payload: encodeReceipt(ids) });
}

function bytesOf(data) {
  if (typeof data === "string") return utf8.encode(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new FrameError("want an ArrayBuffer, a typed array or a string");
}
