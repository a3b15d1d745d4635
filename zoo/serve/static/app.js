// The demo page: record or drop a clip, send it to /api/face, show the faces; with two clips,
// /api/interpolate draws the strip between them. Errors are the server's one line, shown as is.
"use strict";

const $ = (id) => document.getElementById(id);
const clips = [];  // the last two clips sent: {name, blob}
let recorder = null;
let busy = false;
let limits = { max_bytes: 20 * 2 ** 20 };  // replaced by the server's own at start

function say(text) { $("status").textContent = text; }
function fail(text) { $("error").textContent = text; say(""); }

async function post(route, form) {
  let response;
  try {
    response = await fetch(route, { method: "POST", body: form });
  } catch (e) {
    throw new Error(`could not reach the server (${e.message}); is \`python main.py serve\` still running?`);
  }
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`the server answered ${response.status} without a reason`);
  }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function timing(body) {
  const load = body.load_s > 0 ? ` (model loaded in ${body.load_s.toFixed(2)} s)` : "";
  return `${body.latency_s.toFixed(2)} s${load}`;
}

async function loadCheckpoints() {
  try {
    const response = await fetch("/api/checkpoints");
    const body = await response.json();
    const select = $("checkpoint");
    select.replaceChildren();
    for (const choice of body.checkpoints) {
      const option = new Option(choice.label, choice.id);
      option.disabled = Boolean(choice.error);
      option.title = choice.error || choice.label;
      select.append(option);
    }
    limits = body.limits;
    $("limits").textContent = `Up to ${(limits.max_bytes / 2 ** 20).toFixed(0)} MB and ` +
      `${limits.max_seconds} s per clip; a clip longer than the model's window gets one face per window.`;
    if (!body.checkpoints.length) {
      fail("no trained model found: train one with `python main.py train`, then reload this page");
    }
  } catch (e) {
    fail(`could not list the checkpoints: ${e.message}`);
  }
}

function megabytes(bytes) { return `${(bytes / 2 ** 20).toFixed(1)} MB`; }

async function draw(name, blob) {
  if (busy) return;
  if (blob.size > limits.max_bytes) {  // the server would refuse it too, but only after the upload
    fail(`${name}: the upload is ${megabytes(blob.size)}, over the ${limits.max_bytes / 2 ** 20} MB limit; ` +
         "send a shorter clip or a compressed one (ogg, mp3, webm)");
    return;
  }
  busy = true;
  fail("");
  say(`drawing ${name} ...`);
  const form = new FormData();
  form.append("audio", blob, name);
  form.append("checkpoint", $("checkpoint").value);
  try {
    const body = await post("/api/face", form);
    $("face").src = body.face;
    const windows = body.windows > 1 ? `, ${body.windows} windows` : "";
    const note = body.note ? ` (${body.note})` : "";
    $("caption").textContent = `${body.file}: ${body.seconds.toFixed(2)} s${windows}${note}`;
    $("windows-figure").hidden = !body.windows_image;
    if (body.windows_image) $("windows").src = body.windows_image;
    $("result").hidden = false;
    say(`drawn in ${timing(body)}`);
    remember(name, blob);
  } catch (e) {
    fail(e.message);
  } finally {
    busy = false;
  }
}

function remember(name, blob) {
  clips.push({ name, blob });
  if (clips.length > 2) clips.shift();
  $("pair").hidden = clips.length < 2;
  if (clips.length === 2) $("pair-names").textContent = `${clips[0].name} → ${clips[1].name}`;
}

async function interpolate() {
  if (busy || clips.length < 2) return;
  busy = true;
  fail("");
  say("drawing the interpolation ...");
  const form = new FormData();
  form.append("first", clips[0].blob, clips[0].name);
  form.append("second", clips[1].blob, clips[1].name);
  form.append("steps", $("steps").value);
  form.append("checkpoint", $("checkpoint").value);
  try {
    const body = await post("/api/interpolate", form);
    $("strip").src = body.strip;
    $("strip-caption").textContent = `${body.files[0]} → ${body.files[1]}, ${body.steps} faces`;
    $("strip-figure").hidden = false;
    say(`interpolated in ${timing(body)}`);
  } catch (e) {
    fail(e.message);
  } finally {
    busy = false;
  }
}

// -- the microphone: MediaRecorder gives Opus in WebM (Chromium) or Ogg (Firefox) -------------
function extensionOf(mime) {
  if (mime.includes("ogg")) return "ogg";
  if (mime.includes("mp4")) return "m4a";
  return "webm";
}

async function toggleRecording() {
  const button = $("record");
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    fail(`no microphone: ${e.message}; drop a file instead`);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  recorder.onstop = () => {
    stream.getTracks().forEach((track) => track.stop());
    button.textContent = "● Record";
    button.classList.remove("recording");
    const mime = recorder.mimeType || "audio/webm";
    const count = clips.length + 1;
    draw(`recording-${count}.${extensionOf(mime)}`, new Blob(chunks, { type: mime }));
  };
  recorder.start();
  button.textContent = "■ Stop";
  button.classList.add("recording");
  fail("");
  say("recording: speak, then press Stop");
}

// -- files: the chooser and drag and drop ----------------------------------------------------
async function takeFiles(files) {
  for (const file of Array.from(files).slice(0, 2)) await draw(file.name, file);  // one at a time
}

function wire() {
  $("record").addEventListener("click", toggleRecording);
  $("file").addEventListener("change", (event) => {
    takeFiles(event.target.files);
    event.target.value = "";  // choosing the same file again still counts
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    takeFiles(event.dataTransfer.files);
  });
  $("interpolate").addEventListener("click", interpolate);
  if (!window.MediaRecorder || !navigator.mediaDevices) {
    $("record").disabled = true;
    $("record").title = "this browser cannot record here";
  }
  loadCheckpoints();
}

document.addEventListener("DOMContentLoaded", wire);
