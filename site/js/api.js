// The recognition function over HTTP: POST {apiUrl}/predict, every failure a readable message.

export const TIMEOUT_MS = 10_000;

export class ServiceError extends Error {
  /** kind: "unreachable" | "timeout" | "rejected" (4xx) | "failed" (5xx, bad answer) | "cancelled" */
  constructor(kind, message, { status = 0, code = "" } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

/** Sends one request body (strokes or image, model, mode) and resolves to the service's answer. */
export async function predict(apiUrl, body, { signal, timeoutMs = TIMEOUT_MS } = {}) {
  const url = `${apiUrl.replace(/\/+$/, "")}/predict`;
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
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      text = await response.text();
    } catch (error) {
      if (timedOut) {
        throw new ServiceError(
          "timeout",
          `The recognition service at ${apiUrl} did not answer within ${timeoutMs / 1000} s. Try again in a moment.`,
        );
      }
      if (signal?.aborted) throw new ServiceError("cancelled", "The request was replaced by a newer one.");
      throw new ServiceError(
        "unreachable",
        // A busy or starting cloud service answers 429/403 without CORS headers, which looks the same.
        `Cannot reach the recognition service at ${apiUrl}. It may be busy: try again in a moment. ` +
          "If this persists, check that it is running, that config.js points at it " +
          "and that it allows requests from this page.",
      );
    }
    return readAnswer(response, text);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", cancel);
  }
}

function readAnswer(response, text) {
  let payload = null;
  try {
    payload = JSON.parse(text);
  } catch {
    // handled below: an answer that is not JSON is a failure whatever its status
  }
  if (response.ok && payload && typeof payload === "object" && "prediction" in payload) return payload;
  const error = payload?.error ?? {};
  const message = typeof error.message === "string" ? error.message : "";
  const details = { status: response.status, code: typeof error.code === "string" ? error.code : "" };
  if (response.status >= 400 && response.status < 500) {
    const fallback = `The recognition service refused the request (HTTP ${response.status}).`;
    throw new ServiceError("rejected", message ? sentence(message) : fallback, details);
  }
  if (response.ok) {
    throw new ServiceError("failed", "The recognition service sent an answer this page cannot read.", details);
  }
  const reason = message ? `: ${sentence(message)}` : ".";
  throw new ServiceError("failed", `The recognition service had a problem (HTTP ${response.status})${reason}`, details);
}

// "no ink was found" -> "No ink was found."
function sentence(text) {
  const trimmed = text.trim();
  const ending = /[.!?]$/.test(trimmed) ? "" : ".";
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1) + ending;
}
