// What both pages share: the page's fields, its status line, its lists, and the temporary token.
"use strict";

export const ui = Object.fromEntries(
  ["url", "tokenUrl", "start", "stop", "status", "errors", "events", "finals", "interim"].map((id) => [
    id,
    document.getElementById(id),
  ]),
);

export function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

export function showError(code, message) {
  const item = document.createElement("li");
  item.textContent = `${code}: ${message}`;
  ui.errors.append(item);
}

// One line per event the page listens for (speech started/stopped, utterance ends), in order.
export function logEvent(name, detail = "") {
  const item = document.createElement("li");
  item.dataset.event = name;
  item.textContent = detail ? `${name} ${detail}` : name;
  ui.events.append(item);
}

// One line per final transcript (a Deepgram is_final result, an OpenAI completed item).
export function addFinal(text) {
  const item = document.createElement("li");
  item.textContent = text;
  ui.finals.append(item);
  ui.interim.textContent = "";
}

export function finalText() {
  return [...ui.finals.children].map((li) => li.textContent.trim()).filter(Boolean).join(" ");
}

// A temporary token from the page's own backend (serve.py): it holds the server's STT_TOKEN and
// asks POST /v1/auth/token for one that lives 60 s, opens one session and works only from this
// page's origin. The long-lived token never reaches the page.
export async function temporaryToken(endpoint) {
  const reply = await fetch(endpoint, { method: "POST" });
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok || !body.token) throw new Error(body.error || `${endpoint} answered ${reply.status}`);
  return body.token;
}

// The microphone as it is: the browser's voice processing (on by default) is for calls, and the
// model hears better without it (the OpenAI page's PCM: 11 % WER with it, 3 % without).
export async function microphone() {
  return navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
}

export function resetPage() {
  for (const list of [ui.errors, ui.events, ui.finals]) list.replaceChildren();
  ui.interim.textContent = "";
}

export function running(yes) {
  ui.start.disabled = yes;
  ui.stop.disabled = !yes;
}
