// Rendering the result panel: idle prompt, busy, answer with top-5 bars and model input, errors.

export const UNSURE_BELOW = 0.6;

const $ = (id) => document.getElementById(id);

// 0.9999 -> ">99%", 0.0004 -> "<1%": never claim certainty the model did not give
function percent(p) {
  if (p > 0 && p < 0.005) return "<1%";
  if (p < 1 && p >= 0.995) return ">99%";
  return `${Math.round(p * 100)}%`;
}

let stateBeforeBusy = "idle";

/** data-state on #result: idle | busy | done | error (also used by the styles). */
function setState(state) {
  $("result").dataset.state = state;
  $("result").setAttribute("aria-busy", String(state === "busy"));
  $("predict").textContent = state === "busy" ? "Recognising…" : "Predict";
}

export function showIdle(prompt) {
  setState("idle");
  $("prompt").textContent = prompt;
  $("prompt").hidden = false;
  $("answer-block").hidden = true;
  $("details").hidden = true;
  $("error").hidden = true;
}

export function showBusy() {
  const state = $("result").dataset.state;
  if (state !== "busy") stateBeforeBusy = state;
  setState("busy");
  $("error").hidden = true;
}

/** A cancelled request: back to what was shown before it. */
export function cancelBusy() {
  if ($("result").dataset.state !== "busy") return;
  setState(stateBeforeBusy);
  $("error").hidden = stateBeforeBusy !== "error";
}

export function showError(message) {
  setState("error");
  $("prompt").hidden = true;
  $("answer-block").hidden = true;
  $("details").hidden = true;
  $("error").textContent = message;
  $("error").hidden = false;
}

export function showResult(answer) {
  const text = answer.mode === "text";
  const characters = answer.characters ?? [];
  setState("done");
  $("error").hidden = true;
  $("prompt").hidden = true;
  $("answer-block").hidden = false;

  $("answer").textContent = text ? answer.text : answer.prediction;
  $("answer").classList.toggle("long", $("answer").textContent.length > 6);
  $("confidence").textContent = text
    ? `${percent(answer.confidence)} likely as a whole (${characters.length} character${characters.length === 1 ? "" : "s"})`
    : `${percent(answer.confidence)} sure`;

  const unsure = text ? characters.some((c) => c.confidence < UNSURE_BELOW) : answer.confidence < UNSURE_BELOW;
  $("unsure").hidden = !unsure;
  $("unsure").textContent = text
    ? "Not sure about the marked characters: write them larger and apart, or check the other readings below."
    : "Not sure: try writing it larger and clearer, or check the other guesses below.";

  $("top-heading").textContent = text ? "Top 5 readings" : "Top 5 guesses";
  $("top").replaceChildren(...answer.top.map(bar));

  $("characters-block").hidden = !text;
  $("characters").replaceChildren(...characters.map(chip));

  const count = text ? characters.length : 1;
  const image = $("model-input");
  image.src = answer.input;
  image.style.setProperty("--count", String(count));
  image.alt = text
    ? `The ${count} 28 by 28 pixel images the model saw, one per character, left to right`
    : "The 28 by 28 pixel image the model saw";

  const timing = answer.timing_ms?.total;
  $("meta").textContent =
    `${answer.model} model, version ${String(answer.model_version).slice(0, 12)}` +
    (timing === undefined ? "" : `, ${Math.round(timing)} ms on the server`);
  $("details").hidden = false;
}

function bar({ label, probability }) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.className = "bar-label";
  name.textContent = label;
  const track = document.createElement("span");
  track.className = "bar-track";
  track.setAttribute("aria-hidden", "true");
  const fill = document.createElement("span");
  fill.className = "bar-fill";
  fill.style.width = `${probability * 100}%`;
  track.append(fill);
  const value = document.createElement("span");
  value.className = "bar-value";
  value.textContent = percent(probability);
  item.append(name, track, value);
  return item;
}

function chip({ prediction, confidence }) {
  const item = document.createElement("li");
  item.className = confidence < UNSURE_BELOW ? "unsure-char" : "";
  const char = document.createElement("span");
  char.className = "char";
  char.textContent = prediction;
  const value = document.createElement("span");
  value.textContent = confidence < UNSURE_BELOW ? `${percent(confidence)}, not sure` : percent(confidence);
  item.append(char, value);
  return item;
}
