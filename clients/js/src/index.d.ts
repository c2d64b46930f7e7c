// Types of @pushfabric/client, written by hand to match src/*.js.

/** The stable close reasons (docs/protocol.md), and the client's own: "network" (the connection was lost), "gave_up" (reconnect.maxAttempts failed connects in a row). */
export type CloseReason =
  | "normal" | "replaced" | "shutdown" | "auth" | "too_slow" | "protocol" | "idle"
  | "revoked" | "token_expired" | "overloaded" | "network" | "gave_up" | (string & {});

export type Priority = "high" | "low";

/** A WebSocket constructor: the browser's, Node's global (Node 22+, or 20 with --experimental-websocket), or the ws package's. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketLike {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
}

export interface ReconnectOptions {
  /** The ceiling of the first wait, in ms (default 500). */
  baseDelay?: number;
  /** The cap of the wait, in ms (default 30000); a connection up this long resets the backoff. */
  maxDelay?: number;
  /** Failed connects in a row before the client stops with reason "gave_up"; 0 (default): no limit. */
  maxAttempts?: number;
}

export type State =
  | { state: "connecting"; attempt: number }
  | { state: "connected"; session: string; node: string }
  | { state: "disconnected"; reason: CloseReason; message: string; attempt: number; delay: number }
  | { state: "stopped"; reason: CloseReason; message: string };

export interface ClientOptions {
  /**
   * The bearer token, or a callback called before every connect (the first and each reconnect) for a fresh one,
   * and ahead of each token's exp (refreshTime) for a refresh frame that keeps the connection open.
   */
  token?: string | (() => string | Promise<string>);
  /** The session to hold, in the edge's development mode (?session=). */
  session?: string;
  /** The WebSocket implementation; default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Backoff of reconnects; false: stop when the first connection ends. */
  reconnect?: ReconnectOptions | false;
  /** How many push ids are remembered to drop repeats (default 4096); 0: none. */
  dedupeWindow?: number;
  /** "auto" (default): confirm a push that asks for a receipt once onPush returns (or its promise resolves); "manual": call confirm. */
  receipts?: "auto" | "manual";
  /** How long confirmed ids wait to be sent together in one receipt frame, in ms (default 5). */
  receiptDelay?: number;
  /** Bounds each connect attempt, in ms (default 10000): the url and token callbacks each, then the wait for the welcome. */
  dialTimeout?: number;
  /** Each push, once, in order. A push whose handler throws (or rejects) is not confirmed, and a repeat of it is shown again. */
  onPush?: (push: Message) => void | Promise<void>;
  /** Every change of the connection's state. */
  onState?: (state: State) => void;
  /** Error frames about the connection (RequestError with requestId ""), handler failures, malformed frames. Default: console.error. */
  onError?: (err: Error) => void;
  /** The ids of each receipt frame sent. */
  onReceipt?: (ids: string[]) => void;
  /** Numbers uniform in [0, 1) for the jitter; default Math.random. */
  random?: () => number;
}

export interface RequestOptions {
  /** Aborting it cancels the request; the iterator throws the signal's reason. */
  signal?: AbortSignal;
  contentType?: string;
}

/** A push, or one response frame of a request. */
export class Message {
  readonly id: string;
  readonly priority: Priority;
  readonly contentType: string;
  readonly payload: Uint8Array;
  readonly wantsReceipt: boolean;
  text(): string;
  json(): unknown;
}

/** A request's response frames; the request is sent when the iteration starts. */
export interface RequestIterator extends AsyncIterableIterator<Message> {
  readonly id: string;
}

export class Client {
  readonly state: "connecting" | "connected" | "disconnected" | "stopped";
  readonly session: string;
  readonly node: string;
  readonly duplicates: number;
  /** Resolves when the client has stopped for good. */
  readonly closed: Promise<{ reason: CloseReason; message: string }>;
  whenConnected(): Promise<{ session: string; node: string }>;
  confirm(...ids: string[]): void;
  request(method: string, payload?: Uint8Array | string, options?: RequestOptions): RequestIterator;
  close(): Promise<{ reason: CloseReason; message: string }>;
}

export function connect(url: string | ((attempt: number) => string | Promise<string>), options?: ClientOptions): Client;

export class CloseError extends Error {
  readonly reason: CloseReason;
  readonly detail: string;
}
export class RequestError extends Error {
  readonly code: string;
  readonly detail: string;
  readonly requestId: string;
}
export class DisconnectedError extends Error {
  readonly cause?: CloseError;
}

export const CloseCode: Readonly<Record<"normal" | "shutdown" | "protocol" | "replaced" | "auth" | "too_slow" | "idle" | "revoked" | "token_expired" | "overloaded", number>>;
export const STOP_REASONS: readonly CloseReason[];

export const DEFAULT_BASE_DELAY: number;
export const DEFAULT_MAX_DELAY: number;
export function ceiling(n: number, base?: number, max?: number): number;
export function delay(n: number, r: number, base?: number, max?: number): number;

/** The latest a token is refreshed before its exp, in ms (30000). */
export const REFRESH_LEAD: number;
/** A JWT's exp in ms since the epoch, read without checking the token; null if it has none. */
export function tokenExpiry(token: string): number | null;
/** When a token got at got (ms) and expiring at exp (ms) is refreshed: 80% of its life or REFRESH_LEAD before exp, whichever is sooner, not before half its life. */
export function refreshTime(got: number, exp: number): number;

export const DEFAULT_DEDUPE_WINDOW: number;
export class DedupeWindow {
  constructor(n?: number);
  has(id: string): boolean;
  add(id: string): void;
  forget(id: string): void;
  confirm(id: string): void;
  confirmed(id: string): boolean;
}

// The frame codec (also "@pushfabric/client/frames").

export const VERSION: 1;
export const HEADER_LEN: 6;
export const MAX_FIELD_LEN: 255;
export const FLAG_RECEIPT: 0x04;
export const Type: Readonly<{
  push: 1; request: 2; response: 3; end: 4; error: 5; close: 6;
  ping: 7; pong: 8; hello: 9; welcome: 10; cancel: 11; receipt: 12; refresh: 13;
}>;

export interface Frame {
  type: number;
  priority: Priority;
  wantsReceipt: boolean;
  id: string;
  name: string;
  contentType: string;
  payload: Uint8Array;
}

export interface FrameInit {
  type: number;
  priority?: Priority | 0 | 1;
  wantsReceipt?: boolean;
  id?: string;
  name?: string;
  contentType?: string;
  payload?: Uint8Array | ArrayBuffer | ArrayBufferView | string;
}

export class FrameError extends Error {}
export function decode(data: ArrayBuffer | ArrayBufferView | string): Frame;
export function encode(frame: FrameInit): Uint8Array;
export function encodeReceipt(ids: string[]): Uint8Array;
export function decodeReceipt(payload: ArrayBuffer | ArrayBufferView | string): string[];
export function receiptFrame(ids: string[]): Uint8Array;
export function typeName(type: number): string;
