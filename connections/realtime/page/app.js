// The voice page: microphone -> /v1/realtime (OpenAI Realtime GA events) -> speakers, with a live transcript.
// Tests read `window.s2s` ({state, turns, playedMs, audioDeltas, ...}) and `document.body.dataset.state`.

const WIRE_RATE = 24000;
const SESSION_UPDATE = {
  type: "session.update",
  session: {
    type: "realtime",
    audio: {
      input: {
        format: { type: "audio/pcm", rate: WIRE_RATE },
        turn_detection: { type: "server_vad", interrupt_response: true },
      },
      output: { format: { type: "audio/pcm", rate: WIRE_RATE } },
    },
  },
};
const RESPONSE_STATUS = { completed: "done", cancelled: "interrupted", failed: "failed", incomplete: "incomplete" };

const $ = (id) => document.getElementById(id);
const ui = {
  toggle: $("toggle"), status: $("status"), meter: $("meter"), meterBar: $("meter-bar"), latency: $("latency"),
  error: $("error"), turns: $("turns"), empty: $("empty"),
};

const s2s = { state: "idle", status: "", turns: [], playedMs: 0, audioDeltas: 0, error: null, session: null };
window.s2s = s2s;

function setState(state, text) {
  s2s.state = state;
  document.body.dataset.state = state;
  setStatus(text);
  const on = state === "connecting" || state === "listening";
  ui.toggle.textContent = on ? "Stop" : "Start";
  ui.toggle.setAttribute("aria-pressed", String(on));
}

function setStatus(text) {
  s2s.status = text;
  if (ui.status.textContent !== text) ui.status.textContent = text;
}

function showError(message) {
  s2s.error = message;
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

let shownLevel = 0;

/** The microphone's level on a -60..0 dBFS scale, rising at once and falling back slowly (one step per chunk). */
function showLevel(rms) {
  const db = 20 * Math.log10(Math.max(rms, 1e-5));
  const now = Math.round(Math.min(100, Math.max(0, ((db + 60) / 60) * 100)));
  const percent = rms === 0 ? 0 : Math.max(now, shownLevel - 8);
  shownLevel = percent;
  ui.meterBar.style.width = `${percent}%`;
  ui.meter.setAttribute("aria-valuenow", String(percent));
  ui.meter.setAttribute("aria-valuetext", percent < 5 ? "silent" : `${Math.round(db)} dB`);
}

// ---- base64 <-> PCM16 ----

function pcmToBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function base64ToPcm(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length & ~1);
  for (let i = 0; i < bytes.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer; // little-endian Int16 samples, as every browser's platform is
}

// ---- the transcript: server events in, turns out ----

/** One exchange: what the user said and the reply. The ids tie the server's events to it. */
function newTurn() {
  return {
    user: "", assistant: "", status: "speaking", playedMs: 0,
    latencyMs: null, // from receiving input_audio_buffer.speech_stopped to the first sound of the reply
    speechEndLatencyMs: null, // the same, from when the audio the server says speech ended at was captured
    userItemId: null, responseId: null, assistantItemId: null, speechStoppedAt: null, speechEndedAt: null,
  };
}

class Transcript {
  constructor(turns, onChange) {
    this.turns = turns;
    this.onChange = onChange;
  }

  last() {
    return this.turns[this.turns.length - 1] || null;
  }

  find(key, value) {
    if (value == null) return null;
    for (let i = this.turns.length - 1; i >= 0; i--) if (this.turns[i][key] === value) return this.turns[i];
    return null;
  }

  changed(turn) {
    if (turn) this.onChange(turn);
    return turn;
  }

  /** A new utterance: a new turn, unless the last one is a start of speech that never stopped. */
  speechStarted(itemId) {
    let turn = this.last();
    if (!turn || turn.status !== "speaking" || turn.user || turn.responseId) {
      if (turn && turn.status === "thinking" && !turn.responseId) turn.status = "unanswered";
      turn = newTurn();
      this.turns.push(turn);
    }
    turn.userItemId = itemId || turn.userItemId;
    turn.status = "speaking";
    return this.changed(turn);
  }

  /** The turn of the user's item `itemId`: the one that has it, else the last one if it may be that item's. */
  forUser(itemId) {
    let turn = this.find("userItemId", itemId);
    if (!turn) {
      turn = this.last();
      if (!turn || (turn.userItemId && turn.user)) return null;
      if (itemId) turn.userItemId = itemId;
    }
    return turn;
  }

  /** `at`: when the event came; `endedAt`: when the audio at its audio_end_ms was captured (null if unknown). */
  speechStopped(itemId, at, endedAt) {
    const turn = this.forUser(itemId);
    if (!turn) return null;
    if (turn.speechStoppedAt == null) turn.speechStoppedAt = at;
    if (turn.speechEndedAt == null) turn.speechEndedAt = endedAt;
    if (turn.status === "speaking") turn.status = "thinking";
    return this.changed(turn);
  }

  userText(itemId, text) {
    const turn = this.forUser(itemId);
    if (!turn) return null;
    turn.user = text.trim();
    return this.changed(turn);
  }

  /** A reply belongs to the latest turn that has none yet (or to a turn of its own, if the server speaks first). */
  responseCreated(responseId) {
    let turn = this.last();
    if (!turn || turn.responseId) {
      turn = newTurn();
      this.turns.push(turn);
    }
    turn.responseId = responseId;
    turn.status = "replying";
    return this.changed(turn);
  }

  forResponse(responseId, itemId) {
    const turn = this.find("responseId", responseId) || this.find("assistantItemId", itemId);
    if (turn && itemId && !turn.assistantItemId) turn.assistantItemId = itemId;
    return turn;
  }

  assistantText(responseId, itemId, delta, whole = false) {
    const turn = this.forResponse(responseId, itemId);
    if (!turn) return null;
    turn.assistant = whole ? delta : turn.assistant + delta;
    return this.changed(turn);
  }

  startedPlaying(itemId, now) {
    const turn = this.find("assistantItemId", itemId);
    if (!turn || turn.latencyMs != null || turn.speechStoppedAt == null) return null;
    turn.latencyMs = Math.round(now - turn.speechStoppedAt);
    if (turn.speechEndedAt != null) turn.speechEndLatencyMs = Math.round(now - turn.speechEndedAt);
    return this.changed(turn);
  }

  played(itemId, ms) {
    const turn = this.find("assistantItemId", itemId);
    if (!turn) return null;
    turn.playedMs = Math.round(ms);
    return this.changed(turn);
  }

  interrupted(turn) {
    turn.status = "interrupted";
    return this.changed(turn);
  }

  responseDone(responseId, status) {
    const turn = this.find("responseId", responseId);
    if (!turn || turn.status === "interrupted") return turn;
    turn.status = RESPONSE_STATUS[status] || status || "done";
    return this.changed(turn);
  }

  /** The conversation ended: what was under way stays unfinished. */
  ended() {
    for (const turn of this.turns) {
      if (turn.status === "speaking" || turn.status === "thinking") turn.status = "unanswered";
      else if (turn.status === "replying") turn.status = "interrupted";
      else continue;
      this.changed(turn);
    }
  }

  /** The turns whose reply is still being written by the server. */
  replying() {
    return this.turns.filter((turn) => turn.status === "replying");
  }
}

// ---- rendering ----

const turnElements = new WeakMap();

function line(kind, who) {
  const p = document.createElement("p");
  p.className = `line ${kind}`;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who;
  const text = document.createElement("span");
  text.className = "text";
  p.append(label, text);
  return p;
}

const STATUS_TEXT = {
  speaking: "", thinking: "thinking…", replying: "", done: "", interrupted: "interrupted",
  failed: "reply failed", incomplete: "reply cut short", unanswered: "no reply",
};

/** "640 ms after speech_stopped, 1200 ms after you stopped" */
function latencyText(turn) {
  const text = `${turn.latencyMs} ms after speech_stopped`;
  return turn.speechEndLatencyMs == null ? text : `${text}, ${turn.speechEndLatencyMs} ms after you stopped`;
}

function render(turn) {
  let el = turnElements.get(turn);
  if (!el) {
    el = document.createElement("li");
    el.className = "turn";
    const meta = document.createElement("p");
    meta.className = "meta";
    el.append(line("user", "You"), line("assistant", "Assistant"), meta);
    turnElements.set(turn, el);
    ui.turns.append(el);
  }
  const [user, assistant, meta] = el.children;
  el.dataset.status = turn.status;
  const userText = turn.user || (turn.status === "speaking" ? "listening…" : turn.responseId ? "" : "…");
  user.querySelector(".text").textContent = userText;
  user.classList.toggle("pending", !turn.user);
  user.hidden = !userText;
  assistant.querySelector(".text").textContent = turn.assistant;
  assistant.hidden = !turn.assistant;
  const parts = [];
  if (turn.latencyMs != null) parts.push(`reply ${latencyText(turn)}`);
  if (STATUS_TEXT[turn.status]) parts.push(STATUS_TEXT[turn.status]);
  meta.textContent = parts.join(" · ");
  meta.hidden = parts.length === 0;
  el.hidden = !turn.user && !turn.assistant && turn.status !== "speaking" && turn.status !== "thinking";
  ui.empty.hidden = s2s.turns.length > 0;
  if (turn.latencyMs != null) ui.latency.textContent = `Last reply: ${latencyText(turn)}`;
  el.scrollIntoView({ block: "nearest" });
}

// ---- a conversation: socket, microphone, speakers ----

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/realtime`;
}

function subprotocols() {
  const key = new URLSearchParams(location.search).get("key");
  return key ? ["realtime", `openai-insecure-api-key.${key}`] : ["realtime"];
}

class Conversation {
  constructor() {
    this.transcript = new Transcript(s2s.turns, render);
    this.cut = new Set(); // responses whose audio is no longer wanted: the user spoke over them
    this.truncated = new Set(); // assistant items the server was told were cut
    this.sentMs = 0; // input audio sent, in ms
    this.sent = []; // [ms sent by the end of a chunk, when it was captured]
    this.closed = false;
    this.userSpeaking = false;
    this.playing = false;
  }

  async open() {
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error("This page needs a secure origin for the microphone: open it over https, or on localhost.");
    }
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    const worklet = this.ctx.audioWorklet.addModule(new URL("worklet.js", import.meta.url));
    const microphone = navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    }).then((stream) => {
      this.stream = stream;
      if (this.closed) this.close(); // stopped while the browser asked: let the microphone go
      return stream;
    }, (e) => {
      throw new Error(micProblem(e));
    });
    const [stream] = await Promise.all([microphone, this.connect(), worklet]);
    if (this.closed) return;
    await this.ctx.resume();
    this.playback = new AudioWorkletNode(this.ctx, "playback", { numberOfInputs: 0, outputChannelCount: [1] });
    this.playback.port.onmessage = (event) => this.fromPlayback(event.data);
    this.playback.connect(this.ctx.destination);
    this.capture = new AudioWorkletNode(this.ctx, "capture", { numberOfOutputs: 0 });
    this.capture.port.onmessage = (event) => this.fromMicrophone(event.data);
    this.source = this.ctx.createMediaStreamSource(stream);
    this.source.connect(this.capture);
  }

  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(socketUrl(), subprotocols());
      this.ws = ws;
      ws.onopen = () => {
        this.send(SESSION_UPDATE);
        resolve();
      };
      ws.onmessage = (event) => this.fromServer(event.data);
      ws.onclose = (event) => {
        if (this.closed) return reject(new Error("stopped"));
        const why = event.reason ? `: ${event.reason}` : event.code === 1006 ? "" : ` (code ${event.code})`;
        const message = s2s.state === "connecting"
          ? `Could not connect to ${socketUrl()}${why}. Is the server started with --realtime_port,`
            + " and does it want a key (add ?key=… to this page's address)?"
          : `The connection closed${why}.`;
        reject(new Error(message));
        fail(this, message);
      };
    });
  }

  send(event) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event));
  }

  fromMicrophone({ pcm, level }) {
    showLevel(level);
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.send({ type: "input_audio_buffer.append", audio: pcmToBase64(pcm) });
    this.sentMs += pcm.byteLength / 2 / (WIRE_RATE / 1000);
    this.sent.push([this.sentMs, performance.now()]);
    if (this.sent.length > 1500) this.sent.splice(0, 500); // the last minute or so
  }

  /** When the input audio at `audioMs` (since the first append) was captured, or null. */
  capturedAt(audioMs) {
    if (typeof audioMs !== "number") return null;
    const chunk = this.sent.find(([endMs]) => endMs >= audioMs);
    return chunk ? chunk[1] - (chunk[0] - audioMs) : null;
  }

  fromPlayback(message) {
    const now = performance.now();
    if (message.type === "started") {
      this.playing = true;
      const latency = (this.ctx.outputLatency || 0) * 1000;
      this.transcript.startedPlaying(message.itemId, now + latency);
    } else if (message.type === "progress") {
      s2s.playedMs = Math.round(message.totalMs);
      if (message.itemId) this.transcript.played(message.itemId, message.playedMs);
    } else if (message.type === "drained") {
      this.playing = false;
    } else if (message.type === "flushed") {
      this.playing = false;
      this.truncate(message);
    }
    this.refreshStatus();
  }

  /** The user spoke over a reply: tell the server how much of it was heard, so that its history says the same. */
  truncate({ itemId, playedMs, droppedMs }) {
    let turn = this.transcript.find("assistantItemId", itemId);
    if (turn && droppedMs <= 0 && !this.cut.has(turn.responseId)) return; // it had been played to the end
    if (!turn) {
      // Nothing was left to play but the reply was still coming: all it had sent was heard.
      const cut = (t) => this.cut.has(t.responseId) && t.assistantItemId && !this.truncated.has(t.assistantItemId);
      turn = this.transcript.turns.findLast(cut);
      if (!turn) return;
      playedMs = turn.playedMs;
    }
    const audioEndMs = Math.max(0, Math.floor(playedMs));
    this.truncated.add(turn.assistantItemId);
    this.send({ type: "conversation.item.truncate", item_id: turn.assistantItemId, content_index: 0,
      audio_end_ms: audioEndMs });
    this.transcript.played(turn.assistantItemId, audioEndMs);
    this.transcript.interrupted(turn);
  }

  fromServer(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return showError("The server sent something that is not JSON.");
    }
    const t = this.transcript;
    switch (event.type) {
      case "session.created":
      case "session.updated":
        s2s.session = event.session || null;
        break;
      case "input_audio_buffer.speech_started":
        for (const turn of t.replying()) this.cut.add(turn.responseId);
        this.playback?.port.postMessage({ type: "flush" });
        this.userSpeaking = true;
        t.speechStarted(event.item_id);
        break;
      case "input_audio_buffer.speech_stopped":
        this.userSpeaking = false;
        t.speechStopped(event.item_id, performance.now(), this.capturedAt(event.audio_end_ms));
        break;
      case "conversation.item.input_audio_transcription.completed":
        t.userText(event.item_id, event.transcript || "");
        break;
      case "response.created":
        t.responseCreated(event.response?.id);
        break;
      case "response.output_audio.delta":
        s2s.audioDeltas++;
        if (this.cut.has(event.response_id)) break;
        t.forResponse(event.response_id, event.item_id);
        this.playback?.port.postMessage({ type: "push", itemId: event.item_id, pcm: base64ToPcm(event.delta) });
        break;
      case "response.output_audio_transcript.delta":
        t.assistantText(event.response_id, event.item_id, event.delta || "");
        break;
      case "response.output_audio_transcript.done":
        if (event.transcript) t.assistantText(event.response_id, event.item_id, event.transcript, true);
        break;
      case "response.done":
        if (event.response?.status === "cancelled") this.cut.add(event.response.id); // late audio is not played
        t.responseDone(event.response?.id, event.response?.status);
        break;
      case "error":
        showError(`Server error: ${event.error?.message || "unknown"}`);
        break;
    }
    this.refreshStatus();
  }

  refreshStatus() {
    if (s2s.state !== "listening") return;
    const thinking = this.transcript.turns.some((turn) => turn.status === "thinking" || turn.status === "replying");
    if (this.userSpeaking) setStatus("Hearing you…");
    else if (this.playing) setStatus("Speaking…");
    else setStatus(thinking ? "Thinking…" : "Listening");
  }

  close() {
    this.closed = true;
    this.ws?.close(1000);
    this.stream?.getTracks().forEach((track) => track.stop());
    this.ctx?.close().catch(() => {});
    showLevel(0);
    this.transcript.ended();
  }
}

function micProblem(e) {
  if (e.name === "NotAllowedError") return "The microphone was not allowed: allow it for this page and press Start.";
  if (e.name === "NotFoundError") return "No microphone was found.";
  return `The microphone could not be opened: ${e.message || e.name}`;
}

let conversation = null;

function fail(which, message) {
  if (which !== conversation) return;
  which.close();
  conversation = null;
  setState("error", message);
}

async function start() {
  showError("");
  const mine = new Conversation();
  conversation = mine;
  setState("connecting", "Connecting…");
  try {
    await mine.open();
    if (conversation === mine) {
      setState("listening", "Listening");
      mine.refreshStatus();
    }
  } catch (e) {
    fail(mine, e.message || String(e));
  }
}

function stop() {
  conversation?.close();
  conversation = null;
  setState("idle", "Stopped. Press Start to talk again");
}

ui.toggle.addEventListener("click", () => (conversation ? stop() : start()));
setState("idle", "Press Start to talk");
