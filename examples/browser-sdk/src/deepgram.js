// Deepgram's own JavaScript SDK (@deepgram/sdk, listen.v1) in the browser, pointed at wirescribe:
// microphone -> MediaRecorder (WebM/Opus, 250 ms slices) -> connection.sendMedia(); Deepgram's
// Results / SpeechStarted / UtteranceEnd messages -> the page. The only change from talking to
// Deepgram is baseUrl; the temporary token goes in as the SDK's accessToken, which the SDK sends
// in the browser as Sec-WebSocket-Protocol: bearer, TOKEN.
"use strict";

import { DeepgramClient } from "@deepgram/sdk";
import {
  addFinal, finalText, logEvent, microphone, resetPage, running, setStatus, showError, temporaryToken, ui,
} from "./common.js";

const SLICE_MS = 250;
const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

let session = null; // { connection, recorder, stream, queue: slices before open, opened, closed }

async function start() {
  if (session) return;
  resetPage();
  running(true);
  setStatus("connecting", "connecting");
  try {
    const token = await temporaryToken(ui.tokenUrl.value.trim());
    const client = new DeepgramClient({ accessToken: token, baseUrl: ui.url.value.trim() });
    const connection = await client.listen.v1.connect({
      model: "nova-3",
      language: "en",
      punctuate: "true",
      smart_format: "true",
      interim_results: "true",
      vad_events: "true",
      utterance_end_ms: "1000",
      reconnectAttempts: 0, // a refused or dropped session is reported, not retried
    });
    // Recording starts at once; the slices wait, in order (the first holds the WebM header),
    // until the socket opens, so no speech is lost while it connects.
    const stream = await microphone();
    const mimeType = MIME_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const s = { connection, recorder, stream, queue: [], closed: false, opened: false };
    session = s;
    listen(s);
    recorder.ondataavailable = (e) => {
      if (e.data.size === 0 || s.closed) return;
      if (s.opened) connection.sendMedia(e.data);
      else s.queue.push(e.data);
    };
    recorder.start(SLICE_MS);
    connection.connect();
    const socket = await connection.waitForOpen();
    s.opened = true;
    logEvent("open", socket.protocol); // the subprotocol the server selected: "bearer"
    for (const slice of s.queue.splice(0)) connection.sendMedia(slice);
    setStatus("recording", "recording");
  } catch (e) {
    // A refused handshake (401 for a bad token, 400, 429) reaches a page only as an error event:
    // browsers do not show it the status.
    const message = e instanceof Error ? e.message : "cannot connect: refused, or the server is unreachable";
    fail(e instanceof Error ? "client" : "connection", message);
  }
}

function listen(s) {
  s.connection.on("message", (message) => {
    switch (message.type) {
      case "Results": {
        const text = message.channel?.alternatives?.[0]?.transcript || "";
        if (!message.is_final) {
          ui.interim.textContent = text;
          break;
        }
        if (text) addFinal(text);
        if (message.speech_final) logEvent("speech_final", `${message.start.toFixed(2)}+${message.duration.toFixed(2)}`);
        break;
      }
      case "SpeechStarted":
        logEvent("SpeechStarted", message.timestamp.toFixed(2));
        break;
      case "UtteranceEnd":
        logEvent("UtteranceEnd", message.last_word_end.toFixed(2));
        break;
      case "Metadata":
        logEvent("Metadata", `${message.duration.toFixed(1)} s`);
        break;
      default:
        if (message.type === "Error" || message.err_code) showError(message.err_code || "error", message.description || message.err_msg || "");
    }
  });
  s.connection.on("error", (e) => {
    if (s.opened) showError("connection", e?.message || "WebSocket error"); // before open: start() says it
  });
  s.connection.on("close", (event) => {
    const code = event?.code ?? 1000;
    s.closed = true;
    release(s);
    session = null;
    running(false);
    if (code === 1000 && ui.errors.children.length === 0) setStatus("done", "done");
    else setStatus("error", `connection closed with code ${code}`);
  });
}

function release(s) {
  if (s.recorder.state !== "inactive") s.recorder.stop();
  s.stream.getTracks().forEach((track) => track.stop());
}

function fail(code, message) {
  showError(code, message);
  if (session) {
    session.closed = true;
    release(session);
    session.connection.close();
    session = null;
  }
  running(false);
  setStatus("error", message);
}

// Stop: the recorder hands over its last slice, then CloseStream asks for the last results; the
// server sends them and Metadata, then closes with 1000.
async function stop() {
  const s = session;
  if (!s || s.recorder.state === "inactive") return;
  setStatus("finishing", "finishing");
  await new Promise((resolve) => {
    s.recorder.addEventListener("stop", () => setTimeout(resolve, 0), { once: true });
    s.recorder.stop();
  });
  s.stream.getTracks().forEach((track) => track.stop());
  s.connection.sendCloseStream({ type: "CloseStream" });
}

ui.start.addEventListener("click", start);
ui.stop.addEventListener("click", stop);
Object.assign(window, { finalText }); // for tests and the console
