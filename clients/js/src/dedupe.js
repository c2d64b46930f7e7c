// A bounded window of push ids: the last n seen, forgotten oldest first,
// each with whether the application has confirmed it.

/** The default window: more than a node holds queued and unconfirmed for one connection. */
export const DEFAULT_DEDUPE_WINDOW = 4096;

export class DedupeWindow {
  /** n ids are remembered; n <= 0 remembers none (nothing is a repeat). */
  constructor(n = DEFAULT_DEDUPE_WINDOW) {
    this.size = Math.max(0, n);
    this.ids = new Map(); // id → { slot, confirmed }
    this.ring = new Array(this.size);
    this.next = 0;
  }

  /** has reports whether id is in the window. */
  has(id) {
    return this.ids.has(id);
  }

  /** add records id, forgetting the oldest when full. */
  add(id) {
    if (this.size === 0 || this.ids.has(id)) return;
    const old = this.ring[this.next];
    if (old !== undefined && this.ids.get(old)?.slot === this.next) this.ids.delete(old);
    this.ring[this.next] = id;
    this.ids.set(id, { slot: this.next, confirmed: false });
    this.next = (this.next + 1) % this.size;
  }

  /** forget drops id, so that it is not a repeat (its handler failed). */
  forget(id) {
    this.ids.delete(id);
  }

  /** confirm marks id confirmed, if it is in the window. */
  confirm(id) {
    const e = this.ids.get(id);
    if (e) e.confirmed = true;
  }

  /** confirmed reports whether id is in the window and confirmed. */
  confirmed(id) {
    return this.ids.get(id)?.confirmed === true;
  }
}
