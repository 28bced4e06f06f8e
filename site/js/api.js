// The recognition function over HTTP: POST {apiUrl}/predict and GET {apiUrl}/health.
// Every failure becomes a ServiceError: a message for the person using the page and
// a detail for whoever runs the site (the address tried, the status, what the server said).

export const TIMEOUT_MS = 10_000;
const UPLOAD_BYTES_PER_S = 100_000; // a slow mobile uplink: a large body gets this long to go up, on top

export class ServiceError extends Error {
  /** kind: "unreachable" | "timeout" | "rejected" (4xx) | "unavailable" (a model missing) | "failed" (5xx, bad answer) | "cancelled" */
  constructor(kind, message, { status = 0, code = "", detail = "" } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.detail = detail;
  }

  /** Whether the same request may well succeed a moment later. */
  get retryable() {
    return ["unreachable", "timeout", "failed"].includes(this.kind) || [408, 429].includes(this.status);
  }
}

/** Sends one request body (strokes or image, model, mode) and resolves to the service's answer. */
export async function predict(apiUrl, body, { signal, timeoutMs = TIMEOUT_MS } = {}) {
  const url = `${apiUrl.replace(/\/+$/, "")}/predict`;
  const payload = JSON.stringify(body);
  timeoutMs += Math.round((1000 * payload.length) / UPLOAD_BYTES_PER_S);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const cancel = () => controller.abort();
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    let response;
    let text;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: payload,
        signal: controller.signal,
      });
      text = await response.text();
    } catch (error) {
      if (timedOut) {
        throw new ServiceError(
          "timeout",
          `The recognition service did not answer within ${Math.round(timeoutMs / 1000)} s. It may be busy or starting up: try again.`,
          { detail: `POST ${url}: no answer within ${Math.round(timeoutMs / 1000)} s.` },
        );
      }
      if (signal?.aborted) throw new ServiceError("cancelled", "The request was replaced by a newer one.");
      throw new ServiceError(
        "unreachable",
        "The recognition service cannot be reached right now. It may be busy or starting up: try again in a moment.",
        {
          // A busy or starting cloud service answers 429/403 without CORS headers, which looks the same.
          detail:
            `POST ${url} failed before any answer (${error.message}): the service is down, busy (429/403 ` +
            "without CORS headers) or does not allow this page's origin, or config.js points elsewhere.",
        },
      );
    }
    return readAnswer(url, response, text);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", cancel);
  }
}

/** The service's /health answer ({status, models: {name: {labels, ...}}}), or null if it cannot be had. */
export async function health(apiUrl, { timeoutMs = TIMEOUT_MS } = {}) {
  try {
    const response = await fetch(`${apiUrl.replace(/\/+$/, "")}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok ? await response.json() : null;
  } catch {
    return null; // the page works without it; a prediction will report the problem in words
  }
}

function readAnswer(url, response, text) {
  let payload = null;
  try {
    payload = JSON.parse(text);
  } catch {
    // handled below: an answer that is not JSON is a failure whatever its status
  }
  if (response.ok && payload && typeof payload === "object" && "prediction" in payload) return payload;
  const error = payload?.error ?? {};
  const said = typeof error.message === "string" ? error.message : "";
  const code = typeof error.code === "string" ? error.code : "";
  const details = {
    status: response.status,
    code,
    detail: `POST ${url}: HTTP ${response.status}${code ? ` ${code}` : ""}${said ? `: ${said}` : ""}.`,
  };
  if (code === "model_unavailable") {
    // An operator problem that retrying does not fix; other modes (or reading text character by character,
    // which needs no language model) may still answer.
    throw new ServiceError(
      "unavailable",
      "The recognition service cannot read this way right now (its model files are missing on the server). " +
        "Another mode may still work; for text, try reading character by character.",
      details,
    );
  }
  if (["too_many_strokes", "too_many_points", "json_too_complex"].includes(code)) {
    // More writing than one request may hold (the service's limits are in its message, kept in the detail).
    throw new ServiceError(
      "rejected",
      "This drawing is more than the service reads at once. Undo some strokes or clear the pad, and write less at a time.",
      details,
    );
  }
  if (response.status === 429) {
    throw new ServiceError("rejected", "The recognition service is busy right now: try again in a moment.", details);
  }
  if ([502, 503, 504].includes(response.status) && !code) {
    // The platform in front of the function (starting, overloaded or redeploying), not the function's own answer.
    throw new ServiceError(
      "failed",
      "The recognition service is unavailable right now (it may be starting or busy): try again in a moment.",
      details,
    );
  }
  if (response.status >= 400 && response.status < 500) {
    // The service's own messages are written for people ("no ink was found in the image; ...").
    const fallback = "The recognition service could not read this request.";
    throw new ServiceError("rejected", said ? sentence(said) : fallback, details);
  }
  throw new ServiceError(
    "failed",
    "Something went wrong in the recognition service. Try again; if it keeps happening, please report it.",
    details,
  );
}

// "no ink was found" -> "No ink was found."
function sentence(text) {
  const trimmed = text.trim();
  const ending = /[.!?]$/.test(trimmed) ? "" : ".";
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1) + ending;
}
