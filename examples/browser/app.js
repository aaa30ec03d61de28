// A small client of /ws/transcribe (protocol 1), with no build step and no dependencies:
// microphone -> MediaRecorder (WebM/Opus, 250 ms slices) -> one binary frame per slice;
// transcript / final / error messages from the server -> the page.
"use strict";

const SLICE_MS = 250;
// Chromium and Firefox record WebM/Opus; Safari records MP4 — the server's format=auto takes any.
const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

const ui = Object.fromEntries(
  ["url", "token", "tokenUrl", "start", "stop", "status", "clock", "errors", "committed", "tentative", "final"].map(
    (id) => [id, document.getElementById(id)],
  ),
);

let session = null; // the one session in progress: { ws, recorder, stream, queue, ending, gotFinal, ... }

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showError(code, message) {
  const item = document.createElement("li");
  item.textContent = `${code}: ${message}`;
  ui.errors.append(item);
}

function sessionUrl(token = ui.token.value.trim()) {
  const url = new URL(ui.url.value.trim());
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new Error("it must start with ws:// or wss://");
  }
  if (token) url.searchParams.set("token", token); // browsers cannot set an Authorization header
  return url.href;
}

// A temporary token from the page's own backend (examples/browser/token_server.py): it holds the
// server's long-lived token and asks POST /v1/auth/token for one that lives 60 s, opens one
// session and works only from this page's origin. The long-lived token never reaches the page.
async function temporaryToken(endpoint) {
  const reply = await fetch(endpoint, { method: "POST" });
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok || !body.token) throw new Error(body.error || `${endpoint} answered ${reply.status}`);
  return body.token;
}

function chooseMimeType() {
  return MIME_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
}

// Send now, or keep in order until the socket opens: the first slice holds the WebM header.
function send(s, data) {
  if (s.ws.readyState === WebSocket.OPEN) s.ws.send(data);
  else if (s.ws.readyState === WebSocket.CONNECTING) s.queue.push(data);
}

function releaseMicrophone(s) {
  if (s.recorder.state !== "inactive") s.recorder.stop();
  s.stream.getTracks().forEach((track) => track.stop());
  clearInterval(s.timer);
}

function resetButtons() {
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

async function start() {
  if (session) return;
  ui.errors.replaceChildren();
  for (const el of [ui.committed, ui.tentative, ui.final]) el.textContent = "";
  ui.final.classList.remove("empty");
  ui.clock.textContent = "";

  let url;
  try {
    url = sessionUrl();
  } catch (e) {
    setStatus("error", "bad server URL");
    showError("client", `bad server URL: ${e.message}`);
    return;
  }
  const tokenEndpoint = ui.tokenUrl.value.trim();
  if (tokenEndpoint) {
    ui.start.disabled = true;
    setStatus("starting", "getting a temporary token…");
    try {
      url = sessionUrl(await temporaryToken(tokenEndpoint));
    } catch (e) {
      setStatus("error", "no token");
      showError("token", `cannot get a temporary token: ${e.message}`);
      resetButtons();
      return;
    }
  }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    setStatus("error", "no microphone access");
    showError("client", "this page needs https:// (or http://localhost) and a browser with MediaRecorder");
    return;
  }

  ui.start.disabled = true;
  setStatus("starting", "asking for the microphone…");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  } catch (e) {
    setStatus("error", "no microphone");
    showError("microphone", `${e.name}: ${e.message}`);
    resetButtons();
    return;
  }

  let recorder, ws;
  try {
    const mimeType = chooseMimeType();
    recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    ws = new WebSocket(url);
  } catch (e) {
    stream.getTracks().forEach((track) => track.stop());
    setStatus("error", "cannot start");
    showError("client", `${e.name}: ${e.message}`);
    resetButtons();
    return;
  }
  const s = { ws, recorder, stream, queue: [], ending: false, gotFinal: false, opened: false, timer: 0 };
  session = s;

  recorder.ondataavailable = (event) => {
    if (event.data.size > 0) send(s, event.data);
  };
  ws.onopen = () => {
    s.opened = true;
    for (const data of s.queue) ws.send(data);
    s.queue = [];
    if (!s.ending) setStatus("connected", "connected, waiting for the server…");
  };
  ws.onmessage = (event) => onMessage(s, event.data);
  ws.onclose = (event) => onClose(s, event);

  // Record from now on, even before the socket is open: the first words are not lost.
  recorder.start(SLICE_MS);
  const started = performance.now();
  s.timer = setInterval(() => {
    const seconds = Math.floor((performance.now() - started) / 1000);
    ui.clock.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }, 500);
  setStatus("connecting", "connecting…");
  ui.stop.disabled = false;
}

async function stop() {
  const s = session;
  if (!s || s.ending) return;
  s.ending = true;
  ui.stop.disabled = true;
  setStatus("finishing", "finishing: waiting for the final transcript…");
  if (s.recorder.state !== "inactive") {
    // "stop" fires after the last "dataavailable": every slice has been handed to send() by then.
    const stopped = new Promise((resolve) => s.recorder.addEventListener("stop", resolve, { once: true }));
    s.recorder.stop();
    await stopped;
  }
  releaseMicrophone(s);
  send(s, JSON.stringify({ type: "eof" }));
}

function onMessage(s, raw) {
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    showError("client", "the server sent a message that is not JSON");
    return;
  }
  switch (msg.type) {
    case "ready":
      if (!s.ending) setStatus("recording", `recording (model ${msg.model}, language ${msg.language || "auto"})`);
      break;
    case "transcript":
      ui.committed.textContent = msg.committed;
      ui.tentative.textContent = msg.tentative;
      break;
    case "final":
      s.gotFinal = true;
      ui.committed.textContent = msg.text;
      ui.tentative.textContent = "";
      ui.final.textContent = msg.text;
      ui.final.classList.toggle("empty", msg.text === "");
      break;
    case "error":
      showError(msg.code, msg.message);
      break;
    default:
      break; // a newer server's message: ignore it
  }
}

function onClose(s, event) {
  releaseMicrophone(s); // the server may end a session on its own (limit, timeout, error)
  session = null;
  resetButtons();
  if (event.code === 1000 && s.gotFinal) {
    setStatus("done", "done");
  } else if (!s.opened) {
    setStatus("error", "cannot connect");
    showError("connection", `no WebSocket server answered at ${ui.url.value.trim()}`);
  } else {
    const reason = event.reason ? ` (${event.reason})` : "";
    setStatus(s.gotFinal ? "done" : "error", `connection closed with code ${event.code}${reason}`);
  }
}

ui.start.addEventListener("click", start);
ui.stop.addEventListener("click", stop);
