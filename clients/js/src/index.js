// @pushfabric/client: a client for pushfabric edges in browsers and Node.
export { Client, connect } from "./client.js";
export { CloseCode, CloseError, DisconnectedError, RequestError, STOP_REASONS } from "./errors.js";
export { Message } from "./message.js";
export { ceiling, delay, DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY } from "./backoff.js";
export { DedupeWindow, DEFAULT_DEDUPE_WINDOW } from "./dedupe.js";
export { REFRESH_LEAD, refreshTime, tokenExpiry } from "./token.js";
export {
  decode, decodeReceipt, encode, encodeReceipt, FLAG_RECEIPT, FrameError, HEADER_LEN, MAX_FIELD_LEN,
  receiptFrame, Type, typeName, VERSION,
} from "./frames.js";
