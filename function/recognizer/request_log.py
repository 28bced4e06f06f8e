"""Log lines in Cloud Logging's structured format: one JSON object per line on stdout.

Cloud Run (which serves 2nd-gen functions) turns each stdout line that is a
JSON object into a log entry: `severity`, `message`, `httpRequest` and the
`logging.googleapis.com/trace` keys become the entry's own fields, the rest
its jsonPayload (Google's "Structured logging" page). So an operator can
filter on status, latency, model or outcome and jump from a request to its
trace. Only what describes the request goes in, never its body: no image, no
strokes, no answer.
"""

from __future__ import annotations

import json
import logging
import os
import sys

TRACE_HEADER = "X-Cloud-Trace-Context"  # TRACE_ID/SPAN_ID;o=1, set by Google's front end
MAX_LOGGED_URL = 512  # characters of a refused request's path in its log line (a refused one may be 8 KB or more)
SEVERITIES = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})  # Python level names Cloud Logging shares


class CloudLoggingFormatter(logging.Formatter):
    """A record as one JSON line: severity, message (with the traceback, if any) and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        severity = record.levelname if record.levelname in SEVERITIES else "DEFAULT"
        entry = {"severity": severity, "message": message}
        entry |= getattr(record, "fields", {})
        return json.dumps(entry, separators=(",", ":"), default=str)


class StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at the time (test runners replace it), one whole line per record."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def install() -> None:
    """Send every Python log record (ours and libraries') to stdout as a structured line, INFO and above."""
    root = logging.getLogger()
    if not any(isinstance(handler, StdoutHandler) for handler in root.handlers):
        handler = StdoutHandler()
        handler.setFormatter(CloudLoggingFormatter())
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def trace_fields(header: str | None) -> dict:
    """The trace keys Cloud Logging links to Cloud Trace, from an X-Cloud-Trace-Context header value.

    The trace is named by its project; without GOOGLE_CLOUD_PROJECT (set by
    infra/main.tf) the bare trace id is logged, which still groups a request's lines.
    """
    if not header:
        return {}
    trace, _, rest = header.partition("/")
    span, _, options = rest.partition(";")
    if not trace:
        return {}
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    fields = {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace}" if project else trace}
    if span.isdigit() and 0 < int(span) < 2**64:  # the header's span id is decimal, Cloud Logging's 16 hex digits
        fields["logging.googleapis.com/spanId"] = f"{int(span):016x}"
    fields["logging.googleapis.com/trace_sampled"] = options.strip() == "o=1"
    return fields


def http_request(
    method: str | None,
    url: str | None,
    status: int,
    latency_s: float | None,
    request_size: int | None,
    response_size: int,
    user_agent: str | None,
    remote_ip: str | None,
    protocol: str | None,
) -> dict:
    """The `httpRequest` object of a log entry (sizes are strings: they are int64 in the API). What is not
    known is left out: a request the server layer refused may not have sent its request line."""
    fields = {"requestMethod": method, "requestUrl": url, "status": status}
    if latency_s is not None:
        fields["latency"] = f"{latency_s:.6f}s"
    fields["responseSize"] = str(response_size)
    if request_size is not None:
        fields["requestSize"] = str(request_size)
    fields |= {"userAgent": user_agent, "remoteIp": remote_ip, "protocol": protocol}
    return {key: value for key, value in fields.items() if value is not None and value != ""}


def client_ip(forwarded_for: str | None, peer: str | None) -> str | None:
    """The client's address: the last X-Forwarded-For entry, else the peer's.

    Google's front end appends the address it sees to any X-Forwarded-For the
    client sent, so the entries before the last are whatever the client likes,
    and the last is the client as deployed by infra/main.tf (no load balancer
    in front: one would append its own address after the client's).
    """
    last = (forwarded_for or "").rpartition(",")[2].strip()
    return last or peer


def request_line(head: bytes) -> tuple[str | None, str | None]:
    """(method, path) from the first bytes of a raw request, if its request line arrived whole and plausible (the
    path cut to MAX_LOGGED_URL); (None, None) otherwise."""
    method, _, rest = head.partition(b"\r\n")[0].partition(b" ")
    target = rest.rpartition(b" ")[0] if b" HTTP/" in rest else b""
    if method.isalpha() and len(method) <= 16 and target:
        return method.decode("ascii"), target[:MAX_LOGGED_URL].decode("latin-1")
    return None, None


CLIENT_CAUSED_5XX = frozenset({501})  # unsupported_transfer_encoding: the client's coding, no fault here


def severity_of(status: int) -> int:
    """Server faults are errors, client mistakes warnings, answers info."""
    if status >= 500 and status not in CLIENT_CAUSED_5XX:
        return logging.ERROR
    return logging.WARNING if status >= 400 else logging.INFO
