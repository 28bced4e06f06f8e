// Rendering the result panel: idle prompt, busy, answer with top-5 bars and model input, errors,
// and marking an answer out of date when the drawing changes under it.

/**
 * Below this calibrated confidence (of a single answer or of one character in text) the page says it is not sure.
 * `python -m training.unsure` (drawn validation images): the characters model's answers below 0.6 are right 54 % of
 * the time (13 % of its answers), from 0.6 up 94.5 %; between 0.6 and 0.7, 71 %, mostly right, so the line stays at
 * 0.6. The digits model falls below it on 0.3 % of its answers.
 */
export const UNSURE_BELOW = 0.6;

const SLOW_MS = 3000; // a request still open after this gets a second, more patient line
const SMALLEST_ANSWER_PX = 20; // a long reading scales down to this, then scrolls

const $ = (id) => document.getElementById(id);

/** 0.9996 -> "over 99.9 %", 0.999 -> "99.9 %", 0.0004 -> "under 0.1 %": never claim a certainty the model did not give. */
export function percent(p) {
  if (p > 0.999) return "over 99.9 %"; // 0.999 itself is 99.9 %
  if (p < 0.001) return "under 0.1 %";
  const value = p * 100;
  return `${value < 1 || value >= 99 ? value.toFixed(1) : Math.round(value)} %`;
}

let stateBeforeBusy = "idle";
let promptBeforeBusy = "";
let slowTimer = 0;
let focusBeforeBusy = null;

/**
 * Runs `update`, which may hide or replace the result panel's controls. If the keyboard focus was on one of them
 * (a reading, an offer, Try again) and is gone with it, it goes to Predict: left on the page's body, a keyboard user
 * would have to find their way back from the top.
 */
function keepingFocus(update) {
  const before = document.activeElement;
  const inPanel = before !== null && $("result-card").contains(before);
  update();
  if (inPanel && focusLost(document.activeElement)) {
    if ($("predict").disabled) focusBeforeBusy = $("predict"); // busy: Predict takes it back once the answer is in
    else $("predict").focus();
  }
}

function focusLost(element) {
  if (element === null || element === document.body || !element.isConnected) return true;
  // Hidden: checkVisibility where the browser has it (Safari from 17.4), else no boxes laid out.
  return element.checkVisibility ? !element.checkVisibility() : element.getClientRects().length === 0;
}

/** A show* function that keeps the keyboard focus (keepingFocus). */
function focusKept(show) {
  return (...args) => keepingFocus(() => show(...args));
}

/** data-state on #result: idle | busy | done | error (also used by the styles). */
function setState(state) {
  const busy = state === "busy";
  $("result").dataset.state = state;
  // No aria-busy on the live region: a screen reader would then say nothing while the drawing is read, not even
  // "Still waiting for the recognition service…" (Chromium fires no live-region event in a busy region).
  $("predict-label").textContent = busy ? "Reading…" : "Predict";
  $("predict").disabled = busy;
  $("progress").hidden = !busy;
  clearTimeout(slowTimer);
  if (!busy && focusBeforeBusy && document.activeElement === document.body) focusBeforeBusy.focus();
  if (!busy) focusBeforeBusy = null;
}

function setStale(stale) {
  $("result-card").toggleAttribute("data-stale", stale);
  $("stale").hidden = !stale;
}

export const showIdle = focusKept((prompt) => {
  setState("idle");
  setStale(false);
  if ($("prompt").textContent !== prompt) $("prompt").textContent = prompt; // the same again is not news to say
  $("prompt").hidden = false;
  $("answer-block").hidden = true;
  $("details").hidden = true;
  $("error").hidden = true;
});

/** A request has started: say so in the prompt, with progress, and keep the button from sending it twice. */
export const showBusy = focusKept((prompt, slowPrompt) => {
  const state = $("result").dataset.state;
  if (state !== "busy") {
    stateBeforeBusy = state;
    promptBeforeBusy = $("prompt").textContent;
    focusBeforeBusy = document.activeElement === $("predict") ? $("predict") : null;
  }
  setState("busy");
  $("error").hidden = true;
  $("prompt").textContent = prompt;
  $("prompt").hidden = false;
  slowTimer = setTimeout(() => {
    $("prompt").textContent = slowPrompt;
  }, SLOW_MS);
});

/** A cancelled request: back to what was shown before it. */
export function cancelBusy() {
  if ($("result").dataset.state !== "busy") return;
  setState(stateBeforeBusy);
  $("error").hidden = stateBeforeBusy !== "error";
  $("prompt").textContent = promptBeforeBusy;
  $("prompt").hidden = stateBeforeBusy !== "idle";
}

/** The drawing changed after the answer on screen: say so at once, so no answer passes for the new drawing's. */
export function markStale(message) {
  const state = $("result").dataset.state === "busy" ? stateBeforeBusy : $("result").dataset.state;
  if (state !== "done") return;
  $("error").hidden = true; // a problem said beside the answer (a failed import) is about the drawing before
  // Only a new text: the result is a live region, and every stroke would have the old answer read out again.
  if ($("stale").textContent !== message) $("stale").textContent = message;
  setStale(true);
}

/** The drawing is back to the one the answer on screen is for (an Undo of what changed it). */
export function markCurrent() {
  setStale(false);
}

/**
 * A problem that leaves the answer on screen standing (an import that failed while the pad still shows the drawing
 * the answer is for): said under the answer instead of in its place. Reading anything, or a change to the drawing,
 * takes it away.
 */
export function showBesideAnswer(message) {
  showErrorBox(message, { detail: "", onRetry: null });
}

/** An error in plain words; a Retry button where trying again may help; the technical detail folded away. */
export const showError = focusKept((message, { detail = "", onRetry = null } = {}) => {
  setState("error");
  setStale(false);
  $("prompt").hidden = true;
  $("answer-block").hidden = true;
  $("details").hidden = true;
  showErrorBox(message, { detail, onRetry });
});

function showErrorBox(message, { detail, onRetry }) {
  $("error-message").textContent = message;
  $("error-detail").textContent = detail;
  $("error-details").hidden = !detail;
  $("error-details").open = false;
  $("retry").hidden = !onRetry;
  $("retry").onclick = onRetry;
  $("error").hidden = false;
}

/**
 * Each character as the reading spells it (a word's case settled, as in `text`: "hello", where the model's own labels
 * are h e L L O for the letters whose case it merges), where reading and characters match one to one; else the
 * model's labels. The chips and the boxes over the writing both show these.
 */
export function spelledCharacters(answer) {
  const characters = answer.characters ?? [];
  const spelled = [...(answer.text ?? "").replaceAll(" ", "")];
  return characters.map((c, i) => (spelled.length === characters.length ? spelled[i] : c.prediction));
}

/**
 * An answer. `advice` ({text, offers: [{label, action}], forBest}) is the page's word on it (a rejection, several
 * pieces; `forBest`: about the best reading's marked characters, shown only while that reading is chosen); `rejectedAs` names what a rejected single answer is not ("a digit"); `onChoose(text)` is called
 * when a text reading is chosen.
 */
export const showResult = focusKept((answer, { advice = null, rejectedAs = "", onChoose = () => {} } = {}) => {
  const text = answer.mode === "text";
  const characters = answer.characters ?? [];
  const rejected = answer.rejected === true; // text mode: every character was
  setState("done");
  setStale(false);
  $("error").hidden = true;
  $("prompt").hidden = true;
  $("answer-block").hidden = false;

  setAnswer(rejected ? `Not ${rejectedAs}` : text ? answer.text : answer.prediction, rejected);
  // Hidden, its line kept: choosing a reading shows it, and the readings under it must not move.
  $("confidence").style.visibility = rejected ? "hidden" : "";
  $("confidence").style.minHeight = "";
  const readings = text ? (answer.alternatives ?? answer.top.map((t) => ({ text: t.label, probability: t.probability }))) : [];
  const length = `${characters.length} character${characters.length === 1 ? "" : "s"}`;
  // With marked characters, a reading's share among the readings found is no measure of it being right: the line
  // says how many are marked instead (the notice under it says what they may not be).
  const marked = characters.filter((c) => c.rejected).length;
  const whole = marked
    ? `${length}, ${marked} marked`
    : `${percent(readings[0]?.probability ?? answer.confidence)} likely as a whole (${length})`;
  $("confidence").textContent = text ? whole : `${percent(answer.confidence)} sure`;
  if (text) reserveHeight($("confidence"), [whole, ...readings.map((r) => chosenLine(r.probability))]);

  // A text reading is judged as a whole: the search may settle a character the model alone was unsure of.
  const unsure = !rejected && ((text && characters.some((c) => c.rejected)) || answer.confidence < UNSURE_BELOW);
  $("unsure").hidden = !unsure || (text && Boolean(advice)); // a text reading's advice already says what is marked
  $("unsure").style.visibility = ""; // about the best reading: hidden while another is chosen (readingItem)
  $("unsure").textContent = text
    ? "Not sure about this reading: choose another below, or write the marked characters larger and apart."
    : "Not sure: try writing it larger and clearer, or check the other guesses below.";

  $("notice").hidden = !advice;
  $("notice").style.visibility = "";
  $("notice").dataset.forBest = String(Boolean(advice?.forBest));
  $("notice-text").textContent = advice?.text ?? "";
  $("notice-actions").replaceChildren(...(advice?.offers ?? []).map(offerButton));

  // A rejected answer's guesses are the model's probabilities among its classes: how it would read it if it were one.
  const guesses = text ? "readings" : "guesses";
  const heading = text ? "Readings: choose the right one" : "Top 5 guesses";
  $("top-heading").textContent = rejected ? `If it were ${rejectedAs}: closest ${guesses}` : heading;
  $("top").replaceChildren(
    ...(text ? readings.map((r, i) => readingItem(r, i === 0 ? whole : "", !rejected, onChoose)) : answer.top.map(bar)),
  );

  $("characters-block").hidden = !text;
  const shown = spelledCharacters(answer);
  const settled = text && !rejected && answer.confidence >= UNSURE_BELOW; // the reading, not each character, decides
  const unit = answer.model === "digits" ? "a digit" : "a character";
  const chips = characters.map((c, i) => chip(c, { shown: shown[i], settled, unit }));
  $("characters").replaceChildren(...byWord(chips, answer.words));

  const image = $("model-input");
  const count = (tiles) => {
    image.style.setProperty("--count", String(tiles));
    image.alt =
      text && tiles > 1
        ? `The ${tiles} 28 by 28 pixel images the model saw, one per character, left to right`
        : "The 28 by 28 pixel image the model saw";
  };
  count(text ? characters.length : 1); // until the image says how many tiles it holds
  image.onload = () => {
    count(Math.max(1, Math.round(image.naturalWidth / image.naturalHeight)));
    fitAnswer();
  };
  image.src = answer.input;

  const timing = answer.timing_ms?.total;
  $("meta").textContent =
    `${answer.model} model, version ${String(answer.model_version).slice(0, 12)}` +
    (timing === undefined ? "" : `, ${Math.round(timing)} ms on the server`);
  $("details").hidden = false;
  fitAnswer();
});

/** The confidence line of a reading chosen instead of the best one. */
function chosenLine(probability) {
  return `${percent(probability)} likely: the reading you chose`;
}

/** Keeps room for the tallest of `texts` in `element`, which shows one of them at a time (it keeps its text). */
function reserveHeight(element, texts) {
  const shown = element.textContent;
  element.style.minHeight = "";
  let tallest = 0;
  for (const text of texts) {
    element.textContent = text;
    tallest = Math.max(tallest, element.offsetHeight);
  }
  element.textContent = shown;
  element.style.minHeight = `${tallest}px`;
}

function setAnswer(value, inWords = false) {
  $("answer").textContent = value;
  $("answer").classList.toggle("in-words", inWords);
}

/** Keeps the answer on one line: the type shrinks until it fits (down to a floor, then the line scrolls). */
export function fitAnswer() {
  const answer = $("answer");
  answer.style.fontSize = "";
  if (!$("answer-block").hidden && answer.scrollWidth > answer.clientWidth) {
    const size = parseFloat(getComputedStyle(answer).fontSize);
    const fitted = Math.floor((size * answer.clientWidth) / answer.scrollWidth) - 1;
    answer.style.fontSize = `${Math.max(SMALLEST_ANSWER_PX, fitted)}px`;
  }
  for (const element of [answer, $("model-strip")]) scrollableByKeyboard(element);
}

// A box that scrolls must be reachable with the keyboard, or its hidden part is out of reach.
function scrollableByKeyboard(element) {
  if (element.scrollWidth > element.clientWidth) element.tabIndex = 0;
  else element.removeAttribute("tabindex");
}

/** Brings the answer, the error or (while busy) the prompt into view where it is off screen, as on a phone. */
export function reveal() {
  const target = [$("error"), $("prompt"), $("answer-block")].find((element) => !element.hidden); // busy: the prompt
  if (!target) return;
  const { top, bottom } = target.getBoundingClientRect();
  if (top >= 0 && bottom <= window.innerHeight) return;
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  target.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
}

function offerButton({ label, action }) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", action);
  return button;
}

function barTrack(probability) {
  const track = document.createElement("span");
  track.className = "bar-track";
  track.setAttribute("aria-hidden", "true");
  const fill = document.createElement("span");
  fill.className = "bar-fill";
  fill.style.width = `${probability * 100}%`;
  track.append(fill);
  return track;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function bar({ label, probability }) {
  const item = document.createElement("li");
  item.append(span("bar-label", label), barTrack(probability), span("bar-value", percent(probability)));
  return item;
}

// A text reading as a toggle button: choosing it puts it in the answer. The characters listed belong to the
// best reading (another may split the ink differently), so they show only while it is chosen. `whole` is the
// best reading's own line under the answer ("" for the others); it starts `chosen` unless the line was rejected.
function readingItem({ text, probability }, whole, chosen, onChoose) {
  const best = Boolean(whole);
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "reading";
  button.setAttribute("aria-pressed", String(best && chosen));
  button.append(span("bar-label", text), barTrack(probability), span("bar-value", percent(probability)));
  button.addEventListener("click", () => {
    for (const other of $("top").querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-pressed", "true");
    setAnswer(text);
    // Nothing above the readings may move under the finger: what is about the best reading only is hidden in its
    // place, and the confidence line has room for its longest text (showResult).
    $("confidence").style.visibility = ""; // shown where the line was rejected as a whole
    $("confidence").textContent = best ? whole : chosenLine(probability);
    $("characters-block").hidden = !best;
    $("unsure").style.visibility = best ? "" : "hidden";
    if ($("notice").dataset.forBest === "true") $("notice").style.visibility = best ? "" : "hidden";
    fitAnswer();
    onChoose(text);
  });
  item.append(button);
  return item;
}

/** The chips grouped by word (spaces are not characters): a word wraps as one, and words stand apart. */
function byWord(chips, words) {
  const lengths = (words ?? []).map((word) => [...word.text].length);
  const fits = lengths.length > 0 && lengths.reduce((sum, length) => sum + length, 0) === chips.length;
  let at = 0;
  return (fits ? lengths : [chips.length]).map((length) => {
    const list = document.createElement("ol");
    list.className = "word-characters";
    list.append(...chips.slice(at, (at += length)));
    const item = document.createElement("li");
    item.className = "word";
    item.append(list);
    return item;
  });
}

/**
 * One character of a text reading: `shown` as the reading has it, with how sure the model is of it on its own.
 * Where the model alone would read the ink as something else (an O it takes for 0), the chip says so. It is
 * marked "not sure" only where the reading as a whole is not `settled` (a confident "hello" is not in doubt for an
 * o the model alone was unsure of); a rejected piece may not be a `unit` at all.
 */
function chip({ prediction, confidence, rejected, top }, { shown, settled, unit }) {
  const item = document.createElement("li");
  const unsure = !rejected && !settled && confidence < UNSURE_BELOW;
  const alone = top?.[0];
  const otherwise = !rejected && alone && alone.label !== prediction;
  item.className = `character${rejected ? " rejected-char" : unsure ? " unsure-char" : ""}`;
  const value = rejected
    ? `may not be ${unit}`
    : otherwise
      ? `alone: ${alone.label}, ${percent(alone.probability)}`
      : unsure
        ? `${percent(confidence)}, not sure`
        : percent(confidence);
  item.append(span("char", rejected ? `${shown}?` : shown), span("", value));
  return item;
}
