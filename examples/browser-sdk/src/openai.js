// OpenAI's own JavaScript SDK (openai, OpenAIRealtimeWebSocket) in the browser, pointed at
// wirescribe: a Realtime transcription session (intent=transcription, GA session.update);
// microphone -> AudioWorklet (PCM16 at 24 kHz, 100 ms blocks) -> input_audio_buffer.append;
// server VAD's speech_started / speech_stopped and the items' transcription deltas and
// completions -> the page. The only change from talking to OpenAI is baseURL; the SDK sends the
// key in the browser as Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.KEY. It opens
// wss:// only, so the server must be behind TLS.
"use strict";

import OpenAI from "openai";
import { OpenAIRealtimeWebSocket } from "openai/realtime/websocket";
import {
  addFinal, finalText, logEvent, microphone, resetPage, running, setStatus, showError, temporaryToken, ui,
} from "./common.js";

const RATE = 24000; // audio/pcm in a Realtime session is 24 kHz
const DRAIN_MS = 8000; // after Stop, how long to wait for the last items' transcripts
const MIN_COMMIT_SAMPLES = RATE / 10; // OpenAI refuses to commit less than 100 ms of audio

// The one session in progress: { rt, context, node, stream, queue: blocks before the session is
// configured, ready, pending: item ids not yet transcribed, uncommitted: samples appended since
// the last commit, flushed, ending, ended, closed }.
let session = null;

function sessionUpdate() {
  return {
    type: "session.update",
    session: {
      type: "transcription",
      audio: {
        input: {
          format: { type: "audio/pcm", rate: RATE },
          transcription: { model: "gpt-4o-transcribe", language: "en" },
          turn_detection: { type: "server_vad", threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
        },
      },
    },
  };
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function start() {
  if (session) return;
  resetPage();
  running(true);
  setStatus("connecting", "connecting");
  let s = null;
  try {
    const token = await temporaryToken(ui.tokenUrl.value.trim());
    // Capture starts first; its blocks wait until the session is configured, so no speech is
    // lost while the socket connects.
    s = { rt: null, context: null, node: null, stream: null, queue: [], ready: false, closed: false };
    s.pending = new Set();
    s.uncommitted = 0;
    session = s;
    await capture(s);
    // dangerouslyAllowBrowser: the SDK lets only OpenAI's ephemeral keys (ek_…) into a browser by
    // itself; this is a temporary token of the same kind (60 s, one session, this origin).
    const client = new OpenAI({ apiKey: token, baseURL: ui.url.value.trim(), dangerouslyAllowBrowser: true });
    s.rt = new OpenAIRealtimeWebSocket({ intent: "transcription", dangerouslyAllowBrowser: true }, client);
    listen(s);
    const opened = await new Promise((resolve) => {
      s.rt.socket.addEventListener("open", () => resolve(true), { once: true });
      s.rt.socket.addEventListener("close", () => resolve(false), { once: true });
    });
    if (!opened) return; // the SDK's error event and the close have said why
    logEvent("open", s.rt.socket.protocol); // the subprotocol the server selected: "realtime"
    s.rt.send(sessionUpdate());
    s.ready = true;
    for (const block of s.queue.splice(0)) append(s, block);
    setStatus("recording", "recording");
  } catch (e) {
    if (s?.closed) release(s); // the session ended first (a refusal): its error is shown
    else fail("client", e?.message || String(e));
  }
}

function append(s, block) {
  s.rt.send({ type: "input_audio_buffer.append", audio: base64(block) });
  s.uncommitted += block.byteLength / 2;
}

async function capture(s) {
  s.stream = await microphone();
  s.context = new AudioContext({ sampleRate: RATE }); // the browser resamples the microphone
  await s.context.audioWorklet.addModule("pcm-worklet.js");
  s.node = new AudioWorkletNode(s.context, "pcm16-capture", { processorOptions: { blockSeconds: 0.1 } });
  s.node.port.onmessage = (e) => {
    if (e.data === "flushed") s.flushed?.();
    else if (s.closed) return;
    else if (s.ready) append(s, e.data);
    else s.queue.push(e.data);
  };
  s.context.createMediaStreamSource(s.stream).connect(s.node);
}

function listen(s) {
  const rt = s.rt;
  rt.on("session.created", () => logEvent("session.created"));
  rt.on("input_audio_buffer.speech_started", (e) => {
    s.pending.add(e.item_id);
    logEvent("speech_started", (e.audio_start_ms / 1000).toFixed(2));
  });
  rt.on("input_audio_buffer.speech_stopped", (e) => logEvent("speech_stopped", (e.audio_end_ms / 1000).toFixed(2)));
  rt.on("input_audio_buffer.committed", (e) => {
    s.pending.add(e.item_id);
    s.uncommitted = 0;
    logEvent("committed");
  });
  rt.on("conversation.item.input_audio_transcription.delta", (e) => {
    ui.interim.textContent += e.delta;
  });
  rt.on("conversation.item.input_audio_transcription.completed", (e) => {
    s.pending.delete(e.item_id);
    addFinal(e.transcript);
    logEvent("completed");
    if (s.pending.size === 0) s.ending?.();
  });
  rt.on("error", (err) => {
    const e = err?.error;
    showError(e?.code || e?.type || "error", e?.message || err?.message || String(err));
    s.ending?.(); // nothing more to wait for
  });
  rt.socket.addEventListener("close", (event) => {
    s.closed = true;
    release(s);
    session = null;
    running(false);
    if (ui.errors.children.length === 0 && s.ended) setStatus("done", "done");
    else if (ui.errors.children.length === 0) setStatus("error", `connection closed with code ${event.code}`);
    else setStatus("error", ui.status.dataset.state === "error" ? ui.status.textContent : "error");
  });
}

function release(s) {
  s.stream?.getTracks().forEach((track) => track.stop());
  s.node?.disconnect();
  if (s.context && s.context.state !== "closed") s.context.close();
}

function fail(code, message) {
  showError(code, message);
  const s = session;
  session = null;
  if (s) {
    s.closed = true;
    release(s);
    s.rt?.close();
  }
  running(false);
  setStatus("error", message);
}

// Stop: the worklet's last partial block goes out, a commit ends the turn still open (when there
// is audio to commit), and the page waits for every item's completed transcript before closing.
async function stop() {
  const s = session;
  if (!s || !s.node || s.ending || s.closed) return; // not recording yet, or already stopping
  setStatus("finishing", "finishing");
  s.stream.getTracks().forEach((track) => track.stop());
  await new Promise((resolve) => {
    s.flushed = resolve;
    s.node.port.postMessage("flush");
  });
  await new Promise((resolve) => {
    s.ending = resolve;
    setTimeout(resolve, DRAIN_MS);
    if (s.uncommitted >= MIN_COMMIT_SAMPLES) s.rt.send({ type: "input_audio_buffer.commit" });
    else if (s.pending.size === 0) resolve();
  });
  if (s.closed) return;
  s.ended = true;
  s.rt.close();
}

ui.start.addEventListener("click", start);
ui.stop.addEventListener("click", stop);
Object.assign(window, { finalText }); // for tests and the console
