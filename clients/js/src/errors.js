// The errors the client reports, and the close reasons with their
// WebSocket codes (docs/protocol.md, "Close reasons").

/** WebSocket close codes by close reason. */
export const CloseCode = Object.freeze({
  normal: 1000, shutdown: 1001, protocol: 1002, replaced: 4000, auth: 4001,
  too_slow: 4002, idle: 4003, revoked: 4004, token_expired: 4005, overloaded: 4006,
});

const reasonsByCode = Object.fromEntries(Object.entries(CloseCode).map(([k, v]) => [v, k]));

/**
 * The reasons after which a client stops: another connection holds the
 * session (replaced), the credentials are refused (auth, revoked), a client
 * bug (protocol), the application's own close (normal).
 */
export const STOP_REASONS = Object.freeze(["replaced", "auth", "revoked", "protocol", "normal"]);

/**
 * reasonOf is the close reason of a WebSocket close event without a close
 * frame before it: its reason text if it names one, else the one its code
 * stands for, else "network" (the connection was lost).
 */
export function reasonOf(code, text) {
  if (text && text in CloseCode) return text;
  return reasonsByCode[code] ?? "network";
}

/** A close the server sent (or the connection's loss: reason "network"). */
export class CloseError extends Error {
  constructor(reason, message = "") {
    super(message ? `closed: ${reason}: ${message}` : `closed: ${reason}`);
    this.name = "CloseError";
    /** The stable close reason: "replaced", "shutdown", "auth", …, or "network". */
    this.reason = reason;
    /** The server's message for people, if any. */
    this.detail = message;
  }
}

/** An error frame: for a request (requestId) or about the connection (requestId ""). */
export class RequestError extends Error {
  constructor(code, message = "", requestId = "") {
    super(message ? `${code}: ${message}` : code);
    this.name = "RequestError";
    /** The stable error code: "no_handler", "canceled", "unexpected_frame", … */
    this.code = code;
    this.detail = message;
    this.requestId = requestId;
  }
}

/**
 * A request that could not complete because there was no connection: made
 * between connections, or in flight when its connection ended. Requests
 * are not retried: whether it took effect is unknown.
 */
export class DisconnectedError extends Error {
  constructor(cause) {
    super(cause ? `disconnected: ${cause.message}` : "disconnected", cause ? { cause } : undefined);
    this.name = "DisconnectedError";
  }
}
