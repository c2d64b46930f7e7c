// The codec against the vectors the Go implementation keeps
// (edge/wire/testdata/vectors.json, checked by edge/wire's TestVectors):
// both encode every frame and receipt to the same bytes, decode them to
// the same fields, and refuse the same invalid bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  decode, decodeReceipt, encode, encodeReceipt, FrameError, receiptFrame, Type, typeName,
} from "../src/frames.js";

const vectors = JSON.parse(readFileSync(new URL("../../../edge/wire/testdata/vectors.json", import.meta.url), "utf8"));
const hex = (b) => Buffer.from(b).toString("hex");
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));

test("every frame vector encodes to its bytes", () => {
  for (const v of vectors.frames) {
    const f = {
      type: v.type, priority: v.priority, wantsReceipt: v.wants_receipt,
      id: v.id, name: v.name, contentType: v.content_type, payload: bytes(v.payload_hex),
    };
    assert.equal(hex(encode(f)), v.hex, `${v.type_name} ${v.id}`);
  }
});

test("every frame vector decodes to its fields", () => {
  for (const v of vectors.frames) {
    const f = decode(bytes(v.hex));
    assert.deepEqual(
      { type: f.type, priority: f.priority, wantsReceipt: f.wantsReceipt, id: f.id, name: f.name, contentType: f.contentType, payload: hex(f.payload) },
      { type: v.type, priority: v.priority, wantsReceipt: v.wants_receipt, id: v.id, name: v.name, contentType: v.content_type, payload: v.payload_hex },
    );
    assert.equal(typeName(f.type), v.type_name);
  }
  assert.ok(vectors.frames.some((v) => v.wants_receipt), "the vectors hold a push asking for a receipt");
});

test("every invalid frame is refused", () => {
  for (const v of vectors.invalid_frames) {
    assert.throws(() => decode(bytes(v.hex)), FrameError, v.why);
  }
});

test("receipt payloads encode and decode as the vectors say", () => {
  for (const v of vectors.receipts) {
    assert.equal(hex(encodeReceipt(v.ids)), v.hex);
    assert.deepEqual(decodeReceipt(bytes(v.hex)), v.ids);
  }
  for (const v of vectors.invalid_receipts) {
    assert.throws(() => decodeReceipt(bytes(v.hex)), FrameError, v.why);
  }
  const f = decode(receiptFrame(["r-1", "r-2"]));
  assert.equal(f.type, Type.receipt);
  assert.deepEqual(decodeReceipt(f.payload), ["r-1", "r-2"]);
});

test("frames the format cannot carry are not encoded", () => {
  assert.throws(() => encode({ type: 14 }), FrameError);
  assert.throws(() => encode({ type: Type.push, priority: "urgent" }), FrameError);
  assert.throws(() => encode({ type: Type.request, wantsReceipt: true }), FrameError);
  assert.throws(() => encode({ type: Type.request, id: "x".repeat(256) }), FrameError);
  assert.throws(() => encodeReceipt([]), FrameError);
  assert.throws(() => encodeReceipt([""]), FrameError);
  assert.throws(() => encodeReceipt(["é".repeat(128)]), FrameError); // 256 bytes
  assert.equal(encode({ type: Type.request, id: "x".repeat(255) }).length, 6 + 255);
});

test("a text message and string payloads are read as UTF-8", () => {
  const f = decode(new TextDecoder().decode(encode({ type: Type.push, id: "t", payload: "héllo" })));
  assert.equal(new TextDecoder().decode(f.payload), "héllo");
});
