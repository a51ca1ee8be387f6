// Audio worklets of the voice page, run on the audio thread. Both speak 24 kHz mono PCM16 to the page, whatever the
// AudioContext's own rate (`sampleRate`, usually 48000 or 44100).
//   "capture":  microphone -> low-pass + resample -> 40 ms Int16 chunks (with their RMS level) posted to the page.
//   "playback": the server's Int16 deltas -> a growing ring buffer -> resampled to the speakers; flushes at once and
//               reports how much of each item has been played.

const WIRE_RATE = 24000;
const CHUNK_SAMPLES = WIRE_RATE * 0.04; // 40 ms
const PROGRESS_EVERY_S = 0.05;

/** Windowed-sinc low-pass taps (Blackman window), cut-off `cutoff` in cycles per input sample, unity DC gain. */
function lowPassTaps(cutoff, count) {
  const taps = new Float32Array(count);
  const mid = (count - 1) / 2;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const phase = (2 * Math.PI * i) / (count - 1);
    const window = 0.42 - 0.5 * Math.cos(phase) + 0.08 * Math.cos(2 * phase);
    taps[i] = sinc * window;
    sum += taps[i];
  }
  for (let i = 0; i < count; i++) taps[i] /= sum;
  return taps;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / WIRE_RATE; // input samples per output sample
    // Above 24 kHz, keep what 24 kHz can carry (below 12 kHz, with a margin) before dropping samples.
    this.taps = this.step > 1 ? lowPassTaps(0.45 / this.step, 33) : null;
    this.history = new Float32Array(this.taps ? this.taps.length : 1);
    this.historyAt = 0;
    this.previous = 0; // the last filtered input sample
    this.position = 0; // where the next output falls, in input samples after `previous`
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
    this.energy = 0;
    this.energyCount = 0;
  }

  filter(x) {
    if (!this.taps) return x;
    const { taps, history } = this;
    history[this.historyAt] = x;
    this.historyAt = (this.historyAt + 1) % history.length;
    let y = 0;
    for (let i = 0, j = this.historyAt; i < taps.length; i++, j = (j + 1) % history.length) y += taps[i] * history[j];
    return y;
  }

  emit(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === CHUNK_SAMPLES) {
      const level = Math.sqrt(this.energy / Math.max(1, this.energyCount));
      this.port.postMessage({ pcm: this.chunk.buffer, level }, [this.chunk.buffer]);
      this.chunk = new Int16Array(CHUNK_SAMPLES);
      this.filled = 0;
      this.energy = 0;
      this.energyCount = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    for (let n = 0; n < frames; n++) {
      let x = 0;
      for (const channel of channels) x += channel[n];
      x /= channels.length;
      this.energy += x * x;
      this.energyCount++;
      const y = this.filter(x);
      // Linear interpolation between `previous` (at 0) and `y` (at 1).
      while (this.position < 1) {
        this.emit(this.previous + (y - this.previous) * this.position);
        this.position += this.step;
      }
      this.position -= 1;
      this.previous = y;
    }
    return true;
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = WIRE_RATE / sampleRate; // wire samples per output sample
    this.ring = new Float32Array(WIRE_RATE * 30); // grows when a reply arrives faster than it plays
    this.written = 0; // wire samples written since the start, ever
    this.position = 0; // read position in the same count (fractional)
    this.items = []; // [{itemId, start, end}] in the order their audio was written
    this.totalPlayed = 0; // wire samples played, ever
    this.sinceProgress = 0;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(message) {
    if (message.type === "push") this.push(message.itemId, new Int16Array(message.pcm));
    else if (message.type === "flush") this.flush();
  }

  push(itemId, pcm) {
    this.reserve(pcm.length);
    const last = this.items[this.items.length - 1];
    if (last && last.itemId === itemId && last.end === this.written) last.end += pcm.length;
    else this.items.push({ itemId, start: this.written, end: this.written + pcm.length });
    const ring = this.ring;
    for (let i = 0; i < pcm.length; i++) ring[(this.written + i) % ring.length] = pcm[i] / 0x8000;
    this.written += pcm.length;
  }

  /** Room for `count` more samples without overwriting unplayed ones. */
  reserve(count) {
    const unplayed = this.written - Math.floor(this.position);
    if (unplayed + count + 2 <= this.ring.length) return;
    let size = this.ring.length;
    while (unplayed + count + 2 > size) size *= 2;
    const bigger = new Float32Array(size);
    for (let i = Math.floor(this.position); i < this.written; i++) bigger[i % size] = this.ring[i % this.ring.length];
    this.ring = bigger;
  }

  current() {
    const at = Math.floor(this.position);
    return this.items.find((item) => at >= item.start && at < item.end) || null;
  }

  playedMs(item) {
    return (Math.min(this.position, item.end) - item.start) / (WIRE_RATE / 1000);
  }

  flush() {
    const item = this.current();
    const droppedMs = (this.written - this.position) / (WIRE_RATE / 1000);
    this.port.postMessage({
      type: "flushed",
      itemId: item ? item.itemId : null,
      playedMs: item ? this.playedMs(item) : 0,
      droppedMs: Math.max(0, droppedMs),
    });
    this.position = this.written;
    this.items = [];
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const ring = this.ring;
    const before = this.position;
    for (let n = 0; n < out.length; n++) {
      const at = Math.floor(this.position);
      if (at >= this.written) {
        out[n] = 0; // nothing to play: wait for the next delta
        continue;
      }
      const a = ring[at % ring.length];
      const b = at + 1 < this.written ? ring[(at + 1) % ring.length] : a;
      out[n] = a + (b - a) * (this.position - at);
      this.position += this.step;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (this.position > before) {
      this.report(this.position - before);
      if (Math.floor(this.position) >= this.written) this.port.postMessage({ type: "drained" });
    }
    return true;
  }

  /** Tells the page which items began to play, and now and then how far each one and the whole have got. */
  report(advanced) {
    this.totalPlayed += advanced;
    this.sinceProgress += advanced / WIRE_RATE;
    for (const item of this.items) {
      if (item.start >= this.position) break;
      if (!item.started) {
        item.started = true;
        this.port.postMessage({ type: "started", itemId: item.itemId });
      }
    }
    const finished = this.items.length > 0 && this.items[0].end <= this.position;
    if (this.sinceProgress < PROGRESS_EVERY_S && !finished) return;
    this.sinceProgress = 0;
    const item = this.current() || this.items[0];
    this.port.postMessage({
      type: "progress",
      itemId: item ? item.itemId : null,
      playedMs: item ? this.playedMs(item) : 0,
      totalMs: this.totalPlayed / (WIRE_RATE / 1000),
    });
    while (this.items.length && this.items[0].end <= this.position) this.items.shift();
  }
}

registerProcessor("capture", CaptureProcessor);
registerProcessor("playback", PlaybackProcessor);
