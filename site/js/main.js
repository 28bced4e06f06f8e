// Wiring: controls, keyboard shortcuts, imports and predictions.

import { predict } from "./api.js";
import { DrawingPad } from "./canvas.js";
import { firstImageFile, loadPicture } from "./picture.js";
import * as ui from "./ui.js";

const API_URL = window.HANDWRITING_CONFIG?.apiUrl || "http://localhost:8080";
const LIVE_DELAY_MS = 600;

// The choices offered, as the API's model and mode.
const CHOICES = {
  digit: {
    model: "digits",
    mode: "single",
    name: "a digit",
    draw: "Draw one digit here",
    prompt: "Draw a digit and press Predict.",
  },
  character: {
    model: "characters",
    mode: "single",
    name: "a character",
    draw: "Draw one letter or digit here",
    prompt: "Draw a letter or digit and press Predict.",
  },
  number: {
    model: "digits",
    mode: "text",
    name: "a number",
    draw: "Write a number here",
    prompt: "Write a number and press Predict.",
  },
  text: {
    model: "characters",
    mode: "text",
    name: "text",
    draw: "Write a short word here (capitals work best)",
    prompt: "Write a few characters and press Predict.",
  },
};

const $ = (id) => document.getElementById(id);

const pad = new DrawingPad($("pad"), {
  onStrokeStart: () => {
    cancelRequest(); // an answer for the drawing before this stroke would be stale
    importing++; // and a picture still loading would wipe this stroke
    updatePlaceholder();
  },
  onStrokeEnd: () => scheduleLive(),
});

let liveTimer = 0;
let request = null; // the AbortController of the prediction in flight
let importing = 0; // the number of the latest import: an earlier one that finishes later is dropped

function choice() {
  return CHOICES[document.querySelector('input[name="mode"]:checked').value];
}

function updatePlaceholder() {
  $("pad-placeholder").textContent = choice().draw;
  $("pad-placeholder").hidden = !pad.isEmpty();
}

function updatePenWidth() {
  pad.setPenWidth(Number($("pen-width").value));
  $("pen-width-value").textContent = `${$("pen-width").value} px`;
}

function requestBody() {
  const { model, mode } = choice();
  if (pad.picture) return { image: pad.picture.dataUrl, model, mode };
  return {
    strokes: pad.strokePoints(),
    width: Math.max(1, Math.round(pad.size.width)),
    height: Math.max(1, Math.round(pad.size.height)),
    model,
    mode,
  };
}

function cancelRequest() {
  clearTimeout(liveTimer);
  if (!request) return;
  request.abort();
  request = null;
  ui.cancelBusy();
}

async function runPrediction({ quiet = false } = {}) {
  cancelRequest();
  if (pad.isEmpty()) {
    if (!quiet) ui.showError("Nothing to recognise yet: draw something on the pad first, or import an image.");
    return;
  }
  const current = new AbortController();
  request = current;
  ui.showBusy();
  try {
    const answer = await predict(API_URL, requestBody(), { signal: current.signal });
    if (request !== current) return;
    ui.showResult(answer);
    const boxes = (answer.characters ?? []).map((c) => ({ box: c.box, label: c.prediction }));
    if (!pad.isDrawing()) pad.setBoxes(answer.mode === "text" ? boxes : []);
  } catch (error) {
    if (request !== current || error.kind === "cancelled") return;
    ui.showError(error.message);
  } finally {
    if (request === current) request = null;
  }
}

function scheduleLive() {
  clearTimeout(liveTimer);
  if ($("live").checked) liveTimer = setTimeout(() => runPrediction({ quiet: true }), LIVE_DELAY_MS);
}

function reset() {
  cancelRequest();
  pad.clear();
  updatePlaceholder();
  ui.showIdle(choice().prompt);
}

function undo() {
  if (!pad.undo()) return;
  cancelRequest();
  updatePlaceholder();
  if (pad.isEmpty()) ui.showIdle(choice().prompt);
  else scheduleLive();
}

async function importFile(file) {
  if (!file) return;
  cancelRequest();
  const number = ++importing;
  let picture;
  try {
    picture = await loadPicture(file);
  } catch (error) {
    if (number === importing) ui.showError(error.message);
    return;
  }
  if (number !== importing) {
    picture.bitmap.close();
    return;
  }
  pad.setPicture(picture);
  updatePlaceholder();
  await runPrediction();
}

// Controls
$("predict").addEventListener("click", () => runPrediction());
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", reset);
$("pen-width").addEventListener("input", updatePenWidth);
$("live").addEventListener("change", () => {
  if ($("live").checked && !pad.isEmpty()) runPrediction({ quiet: true });
});
for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", () => {
    cancelRequest(); // an answer for the other mode would overwrite this one's prompt
    updatePlaceholder();
    pad.setBoxes([]);
    if (pad.isEmpty()) ui.showIdle(choice().prompt);
    else if ($("live").checked) runPrediction({ quiet: true });
    else ui.showIdle(`Press Predict to read the drawing as ${choice().name}.`);
  });
}

// Imports: file picker, camera, drag and drop anywhere on the page, paste
$("import").addEventListener("click", () => $("file").click());
$("camera").addEventListener("click", () => $("camera-file").click());
for (const input of [$("file"), $("camera-file")]) {
  input.addEventListener("change", async () => {
    await importFile(firstImageFile(input.files));
    input.value = ""; // choosing the same file again is a new import
  });
}
const dropZone = $("drop-zone");
document.addEventListener("dragover", (event) => {
  if (!event.dataTransfer?.types.includes("Files")) return;
  event.preventDefault(); // allow dropping, instead of the browser opening the file
  event.dataTransfer.dropEffect = "copy";
  dropZone.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (event.relatedTarget === null) dropZone.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  if (!event.dataTransfer?.types.includes("Files")) return;
  event.preventDefault();
  dropZone.classList.remove("dragging");
  const file = firstImageFile(event.dataTransfer.files);
  if (file) importFile(file);
  else ui.showError("That was not an image; drop a PNG or JPEG photo or scan of handwriting.");
});
document.addEventListener("paste", (event) => {
  const file = firstImageFile(event.clipboardData?.files);
  if (!file) return;
  event.preventDefault();
  importFile(file);
});

// Keyboard shortcuts (buttons and links keep Enter for themselves)
document.addEventListener("keydown", (event) => {
  const onControl = event.target.closest?.("button, a, summary, input[type=file]");
  if (event.key === "Enter" && !onControl && !event.repeat) {
    event.preventDefault();
    runPrediction();
  } else if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key?.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  } else if (event.key === "Escape" || event.key === "Delete") {
    event.preventDefault();
    reset();
  }
});

$("service-url").textContent = API_URL;
updatePenWidth(); // the browser may have kept the controls' values over a reload
reset();
