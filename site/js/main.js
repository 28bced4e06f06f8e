// Wiring: controls, keyboard shortcuts, imports and predictions.

import { health, predict } from "./api.js";
import { DrawingPad } from "./canvas.js";
import { firstImageFile, loadPicture } from "./picture.js";
import * as ui from "./ui.js";

const API_URL = window.HANDWRITING_CONFIG?.apiUrl || "http://localhost:8080";
const LIVE_DELAY_MS = 600;
const PAD_PER_PEN_PX = 40; // the default pen is the pad's width / this (14 px on a desktop, 8 on a phone)

// The choices offered, as the API's model and mode, and what the page says about each.
const CHOICES = {
  digit: {
    model: "digits",
    mode: "single",
    name: "a digit",
    draw: "Draw one digit here",
    prompt: "Draw a digit and press Predict.",
    help: "One digit, 0 to 9.",
    rejected: "This does not look like a digit. Writing a letter? Try Character.",
    otherwise: ["character"],
    several: ["number", "text"],
  },
  character: {
    model: "characters",
    mode: "single",
    name: "a character",
    draw: "Draw one letter or digit here",
    prompt: "Draw a letter or digit and press Predict.",
    help: "One letter or digit.",
    rejected: "This does not look like a letter or a digit. Write one character, large and clear.",
    otherwise: [],
    several: ["text"],
  },
  number: {
    model: "digits",
    mode: "text",
    name: "a number",
    draw: "Write a number here",
    prompt: "Write a number and press Predict.",
    help: "Several digits in a row, read left to right.",
    rejected: "The marked characters do not look like digits. Writing letters too? Try Text.",
    otherwise: ["text"],
  },
  text: {
    model: "characters",
    mode: "text",
    name: "text",
    draw: "Write a word or a number here",
    prompt: "Write a few characters and press Predict.",
    help: "Letters and digits, read left to right; a code character by character.",
    nothing: "This does not look like letters or digits. Write them large and clear, a little apart.",
  },
};

const $ = (id) => document.getElementById(id);

const pad = new DrawingPad($("pad"), {
  onStrokeStart: () => {
    importing++; // a picture still loading would wipe this stroke
    drawingChanged();
  },
  onStrokeEnd: () => {
    describePad();
    if (!predictWhenLifted) return scheduleLive();
    predictWhenLifted = false;
    runPrediction();
  },
  onResize: () => {
    if (answerIsCurrent()) answered.showBoxes(); // a picture's boxes, or the strokes' back at the size they were read at
  },
});

let liveTimer = 0;
let request = null; // the AbortController of the prediction in flight
let importing = 0; // the number of the latest import: an earlier one that finishes later is dropped
let predictWhenLifted = false; // Predict (Enter) pressed mid-stroke: the stroke is read once it is finished
// The answer on screen: the drawing it was read from (pad.snapshot()) and how to draw its boxes again.
let answered = null;

function choiceName() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function choice() {
  return CHOICES[choiceName()];
}

// Words (the default) or none (character by character, for codes); sent in text mode only.
function readingContext() {
  return document.querySelector('input[name="context"]:checked').value;
}

function updatePlaceholder() {
  $("pad-placeholder").textContent = choice().draw;
  $("pad-placeholder").hidden = !pad.isEmpty();
  describePad();
}

/** The pad's name says what is on it: a screen reader user can tell what an import, Undo or Clear left there. */
function describePad() {
  const strokes = pad.strokes.length; // a stroke over a picture replaces it (Undo brings it back)
  const held = pad.picture
    ? `the picture ${pad.picture.name}`
    : strokes
      ? `${strokes} stroke${strokes === 1 ? "" : "s"}`
      : "empty; draw with a mouse, finger or pen";
  $("pad").setAttribute("aria-label", `Drawing area: ${held}`);
}

function updateModeHelp() {
  $("mode-help").textContent = choice().help;
  $("context").hidden = choiceName() !== "text";
}

function updatePenWidth() {
  pad.setPenWidth(Number($("pen-width").value));
  $("pen-width-value").textContent = `${$("pen-width").value} px`;
}

function requestBody() {
  const { model, mode } = choice();
  const context = choiceName() === "text" ? { context: readingContext() } : {};
  if (pad.picture) return { image: pad.picture.dataUrl, model, mode, ...context };
  return {
    strokes: pad.strokePoints(),
    width: Math.max(1, Math.round(pad.size.width)),
    height: Math.max(1, Math.round(pad.size.height)),
    model,
    mode,
    ...context,
  };
}

function cancelRequest() {
  clearTimeout(liveTimer);
  if (!request) return;
  request.abort();
  request = null;
  ui.cancelBusy();
}

/** The drawing on screen changed: the answer on screen is out of date, or (after an Undo) current again. */
function drawingChanged() {
  cancelRequest(); // an answer for the drawing before this change would be stale
  updatePlaceholder();
  if (pad.isEmpty()) {
    ui.showIdle(choice().prompt);
  } else if (["error", "idle"].includes($("result").dataset.state)) {
    // No answer on screen (an error, or Undo bringing back what Esc cleared): the drawing waits to be read.
    ui.showIdle(waitingPrompt());
  } else if (answerIsCurrent()) {
    ui.markCurrent(); // an Undo took back what changed the drawing: the answer is its answer again
    answered.showBoxes();
  } else {
    ui.markStale(
      $("live").checked
        ? "The drawing changed: reading it again…"
        : "The drawing changed after this answer: press Predict to read it again.",
    );
  }
}

/** What the page says while a drawing waits to be read. */
function waitingPrompt() {
  const name = choice().name;
  return $("live").checked ? `The drawing is read as ${name} when you pause.` : `Press Predict to read the drawing as ${name}.`;
}

function answerIsCurrent() {
  return answered !== null && $("result").dataset.state === "done" && pad.shows(answered.drawing);
}

// What the page adds to an answer in words: a rejection, or several pieces where one character was expected.
function advice(answer) {
  const current = choice();
  const offers = (names) =>
    names.map((name) => ({ label: `Read as ${CHOICES[name].name}`, action: () => switchTo(name) }));
  if (answer.mode !== "single") {
    // Every character rejected: the line as a whole is; some: the reading stands, with the marked ones.
    if (answer.rejected) return { text: current.nothing ?? current.rejected, offers: offers(current.otherwise ?? []) };
    const marked = (answer.characters ?? []).some((c) => c.rejected);
    // About the best reading's marked characters: it goes with them when another reading is chosen.
    return marked && current.rejected ? { text: current.rejected, offers: offers(current.otherwise), forBest: true } : null;
  }
  if (answer.pieces > 1) {
    return {
      text: `This drawing has ${answer.pieces} separate parts.${current.several.length ? ` If it is more than one character, read it as ${current.several.map((n) => CHOICES[n].name).join(" or ")}.` : ""}`,
      offers: offers(current.several),
    };
  }
  if (answer.rejected) return { text: current.rejected, offers: offers(current.otherwise) };
  return null;
}

function showAnswer(answer, sentSize, drawing) {
  // A box is labelled as the reading spells its character, as the chips are; a character the model rejected is
  // still read (the answer line has it): its box says so with a "?".
  const spelled = ui.spelledCharacters(answer);
  const boxes = (answer.characters ?? []).map((c, i) => ({ box: c.box, label: c.rejected ? `${spelled[i]}?` : spelled[i] }));
  const words = (answer.words ?? []).map((w) => ({ box: w.box, label: w.text }));
  // The boxes come back in the coordinates of the pad's size when the drawing was sent. Strokes follow the pad's
  // size (a turned phone), so the boxes fit only at that size; a picture's are in its own pixels and always fit.
  const boxesFit = () =>
    pad.picture !== null || (pad.size.width === sentSize.width && pad.size.height === sentSize.height);
  const showBoxes = (shown) => {
    const fit = shown && boxesFit() && pad.shows(drawing); // never over another drawing than the one read
    if (!pad.isDrawing()) pad.setBoxes(fit ? boxes : [], fit ? words : []);
  };
  // The boxes belong to the best reading; another reading chosen may split the ink differently.
  const best = answer.text ?? answer.alternatives?.[0]?.text; // a line rejected as a whole has no text
  let chosen = best;
  const onChoose = (reading) => {
    chosen = reading;
    showBoxes(reading === best);
  };
  ui.showResult(answer, { advice: advice(answer), rejectedAs: choice().name, onChoose });
  showBoxes(answer.mode === "text");
  answered = { drawing, showBoxes: () => showBoxes(answer.mode === "text" && chosen === best) };
}

async function runPrediction({ quiet = false, reveal = !quiet } = {}) {
  if (pad.isDrawing()) {
    if (!quiet) predictWhenLifted = true; // half a stroke is not what the person asked to have read
    return;
  }
  cancelRequest();
  if (pad.isEmpty()) {
    if (!quiet) ui.showError("Nothing to recognise yet: draw something on the pad first, or import an image.");
    if (reveal) ui.reveal();
    return;
  }
  const current = new AbortController();
  request = current;
  ui.showBusy(
    `Reading ${pad.picture ? "the picture" : "your drawing"} as ${choice().name}…`,
    "Still waiting for the recognition service: it may be starting up, which can take several seconds…",
  );
  if (reveal) ui.reveal(); // on a phone the result is below the pad: show that it is being read, and then the answer
  const sentSize = { ...pad.size }; // the boxes come back in these coordinates
  const drawing = pad.snapshot(); // a change to it cancels this request, so an answer is for it
  try {
    const answer = await predict(API_URL, requestBody(), { signal: current.signal });
    if (request !== current) return;
    request = null;
    showAnswer(answer, sentSize, drawing);
    learnModels(); // does nothing once the models are known: asks again if /health failed when the page loaded
  } catch (error) {
    if (request !== current || error.kind === "cancelled") return;
    request = null;
    const retry = error.retryable ? () => runPrediction() : null;
    ui.showError(error.message, { detail: error.detail, onRetry: retry });
  } finally {
    if (request === current) request = null;
  }
  if (reveal) ui.reveal();
}

function scheduleLive() {
  clearTimeout(liveTimer);
  if ($("live").checked) liveTimer = setTimeout(() => runPrediction({ quiet: true }), LIVE_DELAY_MS);
}

function reset() {
  if (pad.isDrawing()) return; // Esc mid-stroke: the rest of the stroke would draw nothing
  cancelRequest();
  importing++; // a picture still loading would come back after Clear
  pad.clear();
  updatePlaceholder();
  ui.showIdle(choice().prompt);
}

function undo() {
  if (pad.isDrawing() || !pad.undo()) return; // Ctrl+Z mid-stroke would take away the stroke being drawn
  drawingChanged();
  if (!pad.isEmpty() && !answerIsCurrent()) scheduleLive();
}

async function importFile(file) {
  if (!file) return;
  cancelRequest();
  // At once: a large photo takes a moment to decode.
  if ($("result").dataset.state === "done") ui.markStale("Loading the new picture…");
  else ui.showIdle("Loading the picture…");
  const number = ++importing;
  let picture;
  try {
    picture = await loadPicture(file);
  } catch (error) {
    if (number === importing) importFailed(error.message);
    return;
  }
  if (number !== importing) {
    picture.bitmap.close();
    return;
  }
  pad.setPicture(picture);
  drawingChanged();
  await runPrediction();
}

function importFailed(message) {
  if (answerIsCurrent()) {
    ui.markCurrent(); // the pad still shows the drawing the answer is for: it stays, the problem said under it
    ui.showBesideAnswer(message);
  } else if ($("result").dataset.state === "busy") {
    ui.showBesideAnswer(message); // a non-image dropped while the drawing is read: the reading goes on
  } else ui.showError(message);
  ui.reveal(); // on a phone the message is below the pad
}

// A new mode or reading context: the answer on screen was read another way.
function readingChanged() {
  cancelRequest(); // an answer for the other mode would overwrite this one's prompt
  answered = null; // the answer on screen, if any, was read the other way
  updatePlaceholder();
  updateModeHelp();
  pad.setBoxes([]);
  if (pad.isEmpty()) ui.showIdle(choice().prompt);
  else if ($("live").checked) runPrediction({ quiet: true });
  else ui.showIdle(waitingPrompt());
}

function switchTo(name) {
  document.querySelector(`input[name="mode"][value="${name}"]`).checked = true;
  readingChanged();
  runPrediction();
}

// Controls
$("predict").addEventListener("click", () => runPrediction());
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", reset);
$("pen-width").addEventListener("input", updatePenWidth);
$("live").addEventListener("change", () => {
  clearTimeout(liveTimer); // turned off: a reading scheduled by the last stroke is not sent
  if ($("live").checked && !pad.isEmpty()) runPrediction({ quiet: true });
});
for (const radio of document.querySelectorAll('input[name="mode"], input[name="context"]')) {
  radio.addEventListener("change", readingChanged);
}
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => pad.restyle());
window.addEventListener("resize", () => ui.fitAnswer());

// Imports: file picker, camera, drag and drop anywhere on the page, paste
$("import").addEventListener("click", () => $("file").click());
$("camera").addEventListener("click", () => $("camera-file").click());
for (const input of [$("file"), $("camera-file")]) {
  input.addEventListener("change", async () => {
    await importFile(input.files[0] ?? null); // a non-image picked under "All files" gets loadPicture's message
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
  else importFailed("That was not an image; drop a PNG or JPEG photo or scan of handwriting.");
});
document.addEventListener("paste", (event) => {
  const file = firstImageFile(event.clipboardData?.files);
  if (!file) return;
  event.preventDefault();
  importFile(file);
});

// Arrow keys move through the modes: say so to the CSS, which rings the focused one (Safari's :focus-visible
// does not match there); a pointer ends it.
const modes = document.querySelector("fieldset.modes");
modes.addEventListener("keydown", (event) => {
  if (event.key.startsWith("Arrow")) modes.classList.add("keyboard");
});
document.addEventListener("pointerdown", () => modes.classList.remove("keyboard"));

// Keyboard shortcuts (buttons and links keep Enter for themselves)
document.addEventListener("keydown", (event) => {
  const onControl = event.target.closest?.("button, a, summary, input[type=file]");
  if (event.key === "Enter" && !onControl && !event.repeat) {
    event.preventDefault();
    if (!$("predict").disabled) runPrediction(); // not again while the same drawing is being read
  } else if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key?.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  } else if (event.key === "Escape" || (event.key === "Delete" && !event.target.closest?.("input, button"))) {
    event.preventDefault();
    reset();
  }
});

// What the characters model tells apart, and any model beyond the built-in choices, from the service's own
// list (this also wakes it up): a model added to the function's models/ is offered with no edit here.
// Asked again after the first answer if the service could not be reached when the page loaded.
let modelsKnown = false;
let modelsAsked = false; // a /health request in flight: one at a time
function learnModels() {
  if (modelsKnown || modelsAsked) return;
  modelsAsked = true;
  health(API_URL).then((info) => {
    modelsAsked = false;
    if (modelsKnown || !info?.models) return;
    modelsKnown = true;
    const labels = info.models.characters?.labels;
    if (Array.isArray(labels)) CHOICES.character.help += ` ${caseNote(labels)}`;
    offerOtherModels(info.models);
    updateModeHelp();
  });
}
learnModels();

function offerOtherModels(models) {
  const offered = new Set(Object.values(CHOICES).map((c) => c.model));
  for (const [model, info] of Object.entries(models)) {
    if (offered.has(model) || !Array.isArray(info?.labels)) continue;
    const key = `model:${model}`;
    CHOICES[key] = {
      model,
      mode: "single",
      name: `a ${model} character`,
      draw: `Draw here (${model})`,
      prompt: `Draw and press Predict to read it with the ${model} model.`,
      help: `The ${model} model reads one of: ${info.labels.slice(0, 20).join(" ")}${info.labels.length > 20 ? " …" : ""}.`,
      rejected: `This does not look like anything the ${model} model reads.`,
      otherwise: [],
      several: [],
    };
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "mode", value: key });
    input.addEventListener("change", readingChanged);
    const label = document.createElement("label");
    const text = document.createElement("span");
    text.textContent = model;
    label.append(input, text);
    document.querySelector("fieldset.modes").append(label);
  }
}

/** ["0".."9", "A".."Z", "a", "b", ...] -> "It tells apart 0–9, A–Z and a b d; other lower-case letters are read as capitals." */
function caseNote(labels) {
  const single = labels.filter((label) => typeof label === "string" && label.length === 1);
  const runs = [/[0-9]/, /[A-Z]/, /[a-z]/].map((kind) => span(single.filter((label) => kind.test(label))));
  const [digits, capitals, lower] = runs;
  if (!lower) return `It reads ${[digits, capitals].filter(Boolean).join(" and ")}; lower-case letters as capitals.`;
  return `It tells apart ${[digits, capitals].filter(Boolean).join(", ")} and lower-case ${lower}; other lower-case letters are read as capitals.`;
}

// ["A", "B", ..., "Z"] -> "A–Z"; ["a", "b", "d"] -> "a b d"
function span(chars) {
  const codes = chars.map((c) => c.codePointAt(0));
  const consecutive = codes.every((code, i) => i === 0 || code === codes[i - 1] + 1);
  if (chars.length > 2 && consecutive) return `${chars[0]}–${chars[chars.length - 1]}`;
  return chars.join(" ");
}

$("service-url").textContent = API_URL;
// The pen's default follows the pad: on a phone's narrow pad a 14 px pen runs a word's letters together on screen.
if ($("pen-width").value === $("pen-width").defaultValue) {
  $("pen-width").value = String(Math.max(6, Math.min(14, Math.round($("pad").clientWidth / PAD_PER_PEN_PX))));
}
updatePenWidth(); // the browser may have kept the controls' values over a reload
updateModeHelp();
reset();
