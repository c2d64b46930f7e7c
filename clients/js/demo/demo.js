// The demo page: one session held with the JavaScript client (clients/js),
// its pushes, receipts, a request with a streamed reply, and the
// connection's states with the reason it ended.

import { connect, DisconnectedError, RequestError } from "./lib/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let client = null; // the client holding the session, null before Connect
let inFlight = null; // the AbortController of the request being answered

const time = () => new Date().toLocaleTimeString();

function item(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  $(list).append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

const log = (text) => item("log", `${time()} ${text}`);
const said = (reason, message) => (message ? `${reason}: ${message}` : reason);

function showState(st) {
  $("state").textContent = st.state;
  $("state").dataset.state = st.state;
  $("send").disabled = st.state !== "connected";
  switch (st.state) {
    case "connecting": return log(`connecting (attempt ${st.attempt})`);
    case "connected":
      $("where").textContent = `session ${st.session} on node ${st.node}`;
      $("close-reason").textContent = "";
      return log(`connected: session ${st.session} on node ${st.node}`);
    case "disconnected":
      $("where").textContent = "";
      $("close-reason").textContent = `closed: ${said(st.reason, st.message)}; reconnecting`;
      return log(`disconnected: ${said(st.reason, st.message)}; reconnecting in ${Math.round(st.delay)} ms`);
    case "stopped":
      $("where").textContent = "";
      $("close-reason").textContent = `closed: ${said(st.reason, st.message)}; not reconnecting`;
      setConnected(false);
      return log(`stopped: ${said(st.reason, st.message)}`);
  }
}

function showPush(p) {
  const li = item("pushes", "");
  li.dataset.id = p.id;
  li.dataset.priority = p.priority;
  const prio = document.createElement("span");
  prio.className = `prio ${p.priority}`;
  prio.textContent = p.priority;
  li.append(prio, `${p.id || "(no id)"}: ${p.text()}`);
  if (p.wantsReceipt) li.dataset.receipt = "pending";
}

function showReceipt(ids) {
  item("receipts", ids.join(" "));
  for (const id of ids) {
    const li = $("pushes").querySelector(`li[data-id="${CSS.escape(id)}"][data-receipt="pending"]`);
    if (!li) continue;
    li.dataset.receipt = "sent";
    const mark = document.createElement("span");
    mark.className = "receipt";
    mark.textContent = "✓ receipt";
    li.append(mark);
  }
}

function setConnected(on) {
  $("connect").disabled = on;
  $("disconnect").disabled = !on;
}

function start(token, session) {
  client = connect(location.origin + "/", {
    token: token || undefined,
    session: session || undefined,
    onPush: showPush,
    onReceipt: showReceipt,
    onState: showState,
    onError: (err) => log(`error: ${err.code ? said(err.code, err.detail) : err.message}`),
  });
  setConnected(true);
}

async function request(method, payload) {
  const ac = new AbortController();
  inFlight = ac;
  $("replies").replaceChildren();
  $("reply-status").textContent = `${method}: waiting`;
  $("cancel").disabled = false;
  try {
    for await (const frame of client.request(method, payload, { signal: ac.signal })) item("replies", frame.text());
    $("reply-status").textContent = `${method}: ended`;
  } catch (err) {
    $("reply-status").textContent = `${method}: ${outcome(err, ac.signal)}`;
  } finally {
    inFlight = null;
    $("cancel").disabled = true;
  }
}

function outcome(err, signal) {
  if (err instanceof RequestError) return `error ${said(err.code, err.detail)}`;
  if (err instanceof DisconnectedError) return `the connection ended first (${err.cause?.reason ?? "network"})`;
  if (signal.aborted) return "canceled";
  return `failed: ${err.message}`;
}

$("connect-form").addEventListener("submit", (e) => {
  e.preventDefault();
  start($("token").value.trim(), $("session").value.trim());
});
$("disconnect").addEventListener("click", () => client?.close());
$("request-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (client && !inFlight) request($("method").value.trim(), $("payload").value);
});
$("cancel").addEventListener("click", () => inFlight?.abort(new Error("canceled")));

$("token").value = params.get("token") ?? "";
$("session").value = params.get("session") ?? "";
if ($("token").value || $("session").value) start($("token").value, $("session").value);
