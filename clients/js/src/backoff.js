// Exponential backoff with full jitter (docs/protocol.md, "Reconnecting"):
// before retry n (from 0) wait a random time uniform in
// [0, min(max, base·2ⁿ)).

/** The defaults, as the Go client's: a base of 500 ms and a cap of 30 s. */
export const DEFAULT_BASE_DELAY = 500;
export const DEFAULT_MAX_DELAY = 30000;

/** ceiling is the longest wait before retry n, in ms: min(max, base·2ⁿ). */
export function ceiling(n, base = DEFAULT_BASE_DELAY, max = DEFAULT_MAX_DELAY) {
  let c = base;
  for (let i = 0; i < n && c < max; i++) c *= 2;
  return Math.min(c, max);
}

/** delay is the wait before retry n, in ms, given r uniform in [0, 1). */
export function delay(n, r, base = DEFAULT_BASE_DELAY, max = DEFAULT_MAX_DELAY) {
  return r * ceiling(n, base, max);
}
