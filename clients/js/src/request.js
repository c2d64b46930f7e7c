// A request in flight: an async iterator of its response frames.

import { Type } from "./frames.js";
import { DisconnectedError, RequestError } from "./errors.js";
import { Message } from "./message.js";

/**
 * Call yields a request's response frames in order. It sends the request on
 * the first next(); the sequence ends after the server's end frame, and
 * throws a RequestError on an error frame, a DisconnectedError when the
 * connection ends first, and the signal's reason when it is aborted.
 * Leaving a for-await loop early (return()) or aborting sends cancel.
 */
export class Call {
  #start; // () => { id, send } or throws: sends the request
  #id = "";
  #send = null; // (frame) => void, on the request's connection
  #unregister = null;
  #frames = [];
  #waiter = null; // { resolve, reject } of a pending next()
  #err = null; // what ended the request, thrown once the frames are taken
  #done = false; // no more frames will come
  #signal;
  #onAbort = () => this.#abort();

  constructor(start, signal) {
    this.#start = start;
    this.#signal = signal;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** The request's id on its connection, once sent. */
  get id() {
    return this.#id;
  }

  next() {
    if (this.#start) this.#begin();
    if (this.#frames.length > 0) return Promise.resolve({ value: this.#frames.shift(), done: false });
    if (this.#done) return this.#finish();
    return new Promise((resolve, reject) => { this.#waiter = { resolve, reject }; });
  }

  /** return stops listening; a request not yet answered in full is canceled. */
  return() {
    this.#cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  #begin() {
    const start = this.#start;
    this.#start = null;
    if (this.#signal?.aborted) return this.#end(this.#signal.reason);
    try {
      ({ id: this.#id, send: this.#send, unregister: this.#unregister } = start(this));
    } catch (err) {
      return this.#end(err);
    }
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  #finish() {
    if (this.#err === null) return Promise.resolve({ value: undefined, done: true });
    const err = this.#err;
    this.#err = null; // thrown once; then the iterator is done
    return Promise.reject(err);
  }

  #abort() {
    this.#cancel(this.#signal.reason);
  }

  /** cancel ends the request with err, telling the server if it is still answering. */
  #cancel(err = null) {
    this.#frames = [];
    if (!this.#done && this.#send) this.#send({ type: Type.cancel, id: this.#id });
    this.#end(err);
  }

  /** frame takes one frame for this request from the connection. */
  frame(f) {
    if (this.#done) return;
    switch (f.type) {
      case Type.response: return this.#push(new Message(f));
      case Type.end: return this.#end(null);
      case Type.error: return this.#end(new RequestError(f.name, new TextDecoder().decode(f.payload), f.id));
    }
  }

  /** disconnected ends the request: its connection ended with cause. */
  disconnected(cause) {
    this.#end(new DisconnectedError(cause));
  }

  #push(m) {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      return w.resolve({ value: m, done: false });
    }
    this.#frames.push(m);
  }

  #end(err) {
    if (this.#done) return;
    this.#done = true;
    this.#err = err;
    this.#unregister?.();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      this.#finish().then(w.resolve, w.reject);
    }
  }
}
