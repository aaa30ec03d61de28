// AudioWorklet: the microphone as 16-bit PCM, mono, at the AudioContext's rate (24 kHz for OpenAI),
// posted in 100 ms blocks (what an input_audio_buffer.append carries). Loaded by URL, not bundled.
"use strict";

class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.block = new Int16Array(Math.round(sampleRate * (options.processorOptions?.blockSeconds ?? 0.1)));
    this.filled = 0;
    this.port.onmessage = (e) => {
      if (e.data !== "flush") return;
      this.post(); // the last, partial block
      this.port.postMessage("flushed");
    };
  }

  post() {
    if (this.filled > 0) this.port.postMessage(this.block.slice(0, this.filled).buffer);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.block[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.block.length) this.post();
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
