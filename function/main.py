"""HTTP entry point `predict`: routing, CORS and JSON errors around recognizer.api.

Deployed as a 2nd-gen Cloud Function with this folder as its source (the
models travel inside it as models/); served locally by
`functions-framework --source function/main.py --target predict`.
"""

from __future__ import annotations

import ctypes
import functools
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path

# One BLAS thread: requests already run in parallel, and a pool per request oversubscribes the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import flask
import functions_framework
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from recognizer import request_log, server_limits
from recognizer.api import MAX_BODY_BYTES, given_twice, read_request, recognize
from recognizer.errors import ApiError
from recognizer.inference import ModelFileError, ModelRegistry
from recognizer.language_model import NAME as LANGUAGE_MODEL
from recognizer.language_model import load_language_model
from recognizer.strokes import check_json_structure
from recognizer.warm_up import warm_up

server_limits.install()  # the server's timeouts and size limits (recognizer/server_limits.py says why here)
request_log.install()  # every log line, the per-request ones included, as Cloud Logging's JSON
LOG = logging.getLogger("requests")

HERE = Path(__file__).resolve().parent
MODELS_DIR = Path(
    os.environ.get("MODELS_DIR") or (HERE / "models" if (HERE / "models").is_dir() else HERE.parent / "models")
)
ROUTES = {"/": ("POST",), "/predict": ("POST",), "/health": ("GET", "HEAD")}  # and OPTIONS on each
CORS_HEADERS = (
    ("Vary", "Origin"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Max-Age", "3600"),
)
BODY_BYTES_READ = "handwriting.body_bytes_read"  # WSGI environ key: what _read_body read
ANSWER_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),  # JSON is never to be sniffed into something else
    ("Cache-Control", "no-store"),  # an answer is about one upload: no cache may keep it
)

registry = ModelRegistry(MODELS_DIR)  # every model whose card is in models/
# One request computes at a time in a worker; the others read their bodies and write their answers meanwhile.
# CPython runs one thread's Python at a time anyway, and 8 threads handing the interpreter lock back and forth
# through a request's ~200 numpy and Pillow calls cost 60 % more CPU per request: one worker with 8 threads
# answered 240 canvas PNGs/s at 8 at once without this lock and 354 with it (measured when the lock went in).
COMPUTE = threading.Lock()


def keep_freed_memory() -> None:
    """Stop glibc returning numpy's per-request buffers to the OS after every request.

    Measured in bench/: without this, a canvas request takes ~580 page faults
    and a third of its time; with it, none. Two arenas: each arena keeps up to
    the trim threshold of freed memory, and glibc would make one per busy
    thread (bench/hostile.py: a worker then held 220 MB after a burst of large
    images instead of 130 MB). A trim threshold of 8 MB keeps every request
    kind at no page faults and no slower than 64 MB did (bench.stages, two
    rounds each), and an idle worker holds less: bench.hostile's 60 s mixed
    soak ended +3 % and +8 % above its start against +18 % and +22 %, median
    RSS 91 and 101 MB against 107 and 108 (training/runs/README.md).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc (e.g. musl): nothing to tune
            return
        libc.mallopt(-3, 4 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 8 * 1024 * 1024)  # M_TRIM_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX


keep_freed_memory()
LOG.info("warmed up in %.0f ms", warm_up(registry) * 1000)  # the first request is then as fast as the tenth


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    started = time.perf_counter()
    facts = {"outcome": "ok"}  # what the request's log line adds to HTTP's facts: model, mode, timing_ms
    try:
        response = _route(request, facts)
    except ApiError as error:
        facts["outcome"] = error.code
        response = _json(error.to_json(), error.status)
        response.headers.extend(error.headers)
    except ModelFileError as error:
        facts |= {"outcome": "model_unavailable", "detail": f"model unavailable: {error}"}  # for the operator
        message = "the server's model files could not be loaded; its operator can see why in the log"
        response = _json({"error": {"code": "model_unavailable", "message": message}}, 503)
    except Exception:  # a bug of ours: still JSON with CORS, so the site can say what happened
        facts |= {"outcome": "internal", "detail": traceback.format_exc()}
        response = _json({"error": {"code": "internal", "message": "the function failed; please try again"}}, 500)
    size = len(response.get_data())
    if response.status_code == 413 or (request.content_length or 0) > MAX_BODY_BYTES:
        # Streamed: functions-framework then leaves the body unread (it reads any body left after the answer, and
        # the server layer hands a declared body over the limit on without it, on any path).
        response.response = iter([response.get_data()])
    response.headers.extend(_cors_headers(request.headers.get("Origin"), request.path))
    response.headers.extend(ANSWER_HEADERS)
    _log_request(request, response.status_code, size, facts, time.perf_counter() - started)
    return response


def _log_request(request: flask.Request, status: int, size: int, facts: dict, seconds: float) -> None:
    """The request's one structured log line (recognizer/request_log.py); never its body."""
    detail = facts.pop("detail", None)  # a traceback starts the message, so Error Reporting picks it up
    message = detail or f"{request.method} {request.path} {status} {facts['outcome']} {seconds * 1000:.1f} ms"
    declared = request.content_length
    fields = {
        "httpRequest": request_log.http_request(
            request.method,
            _url(request),
            status,
            seconds,
            request.environ.get(BODY_BYTES_READ) if declared is None else declared,
            size,
            request.headers.get("User-Agent"),
            request_log.client_ip(request.headers.get("X-Forwarded-For"), request.remote_addr),
            request.environ.get("SERVER_PROTOCOL"),
        ),
        **facts,
        **request_log.trace_fields(request.headers.get(request_log.TRACE_HEADER)),
    }
    LOG.log(request_log.severity_of(status), message, extra={"fields": fields})


def _url(request: flask.Request) -> str:
    """The URL as received, for the log; werkzeug's request.url re-encodes it as an IRI (8 us more per request)."""
    query = request.environ.get("QUERY_STRING")
    return f"{request.scheme}://{request.host}{request.environ.get('PATH_INFO', '')}" + (f"?{query}" if query else "")


def _route(request: flask.Request, facts: dict) -> flask.Response:
    path = request.path.rstrip("/") or "/"
    if path not in ROUTES:
        raise ApiError(404, "not_found", f"no such path {path}; use POST /predict or GET /health")
    if request.method == "OPTIONS":  # CORS preflight
        response = flask.Response(status=204)
        del response.headers["Content-Type"]  # no body, so no type
        return response
    if request.method not in ROUTES[path]:
        allowed = ", ".join(ROUTES[path])
        message = f"{path} accepts {allowed}, not {request.method}"
        raise ApiError(405, "method_not_allowed", message, headers={"Allow": _methods(path)})
    if path == "/health":
        return _health()
    if not registry.names:
        raise _no_models()
    query = _once(request.args, "the query string")  # before the body is read: a mistake costs nothing
    body, form, files = _read_body(request)
    with COMPUTE:
        job = read_request(request.content_type or "", body, query, form, files, registry.names)
        facts |= {"model": job.model, "mode": job.mode}
        answer = recognize(job, registry)
    facts["timing_ms"] = answer.timing_ms
    return _json(answer.to_json())


def _read_body(request: flask.Request) -> tuple[bytes, dict, dict]:
    """(raw body, form fields, uploaded files), never reading more than MAX_BODY_BYTES + 1.

    A chunked upload has no Content-Length to check up front, so the limit is
    enforced while reading; multipart is parsed from the bytes already read,
    with at most MAX_FORM_PARTS parts. A body whose framing is broken (a bad
    chunk size, a missing terminator) or that stops arriving is a client error.
    """
    codings = [c.strip().lower() for c in request.headers.get("Transfer-Encoding", "").split(",") if c.strip()]
    if any(coding != "chunked" for coding in codings):  # gunicorn passes "gzip, chunked" on still compressed
        message = f"Transfer-Encoding {', '.join(codings)} is not supported; send the body as it is (or only chunked)"
        raise ApiError(501, "unsupported_transfer_encoding", message)
    declared = request.content_length
    if (declared or 0) > MAX_BODY_BYTES:
        raise _too_large()
    try:  # what is declared, or at most one byte over the limit (a buffer of the limit's size costs 15 us)
        body = request.stream.read(MAX_BODY_BYTES + 1 if declared is None else declared)
    except TimeoutError as exc:
        raise ApiError(408, "request_timeout", "the request body stopped arriving") from exc
    except server_limits.FRAMING_ERRORS as exc:
        raise ApiError(400, "bad_body", f"the request body could not be read ({str(exc)[:200]})") from exc
    request.environ[BODY_BYTES_READ] = len(body)  # the request's size for its log line when it came chunked
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    if request.mimetype == "application/json":
        check_json_structure(body)
    if request.mimetype != "multipart/form-data":
        return body, {}, {}
    parser = FormDataParser(
        max_form_parts=server_limits.MAX_FORM_PARTS, max_form_memory_size=server_limits.MAX_FORM_FIELD_BYTES
    )
    try:
        _, form, files = parser.parse(io.BytesIO(body), request.mimetype, len(body), request.mimetype_params)
    except RequestEntityTooLarge as exc:
        message = (
            f"the form has more than {server_limits.MAX_FORM_PARTS} parts or over "
            f"{server_limits.MAX_FORM_FIELD_BYTES // 1024} KB of fields; send a large image as a file part"
        )
        raise ApiError(413, "form_too_large", message) from exc
    except HTTPException as exc:
        raise ApiError(400, "bad_request", f"the multipart body could not be read ({exc.description})") from exc
    if body and not form and not files:  # werkzeug skips what it cannot read: say so, not "missing image"
        message = (
            "no part of the multipart body could be read: check the boundary in its Content-Type, each part's "
            "Content-Disposition with a name, and the closing --boundary-- (curl -F image=@digit.png does all three)"
        )
        raise ApiError(400, "bad_request", message)
    return b"", _once(form, "the form"), {name: f.read() for name, f in _once(files, "the form").items()}


def _once(fields: MultiDict, where: str) -> dict:
    """Fields given once each: `model=digits&model=characters` has no one meaning."""
    for name, values in fields.lists():
        if len(values) > 1:
            raise given_twice(name, len(values), where)
    return fields.to_dict()


def _health() -> flask.Response:
    """Each model that loads, with what a client needs to offer it; a model that does not is listed as unavailable.

    One broken model file leaves the others serving ("degraded", still 200);
    503 only when none can answer.
    """
    models, unavailable = {}, []
    for name in registry.names:
        try:
            model = registry.get(name)
        except ModelFileError as error:
            logging.error("model %s unavailable: %s", name, error)
            unavailable.append(name)
            continue
        models[name] = {"version": model.version, "labels": model.labels, "accuracy": model.card.get("accuracy")}
    if not models:
        raise _no_models()
    if any(label.isalpha() for model in models.values() for label in model["labels"]):
        try:  # text mode reads words with it
            load_language_model(registry.folder)
        except ModelFileError as error:
            logging.error("language model unavailable: %s", error)
            unavailable.append(LANGUAGE_MODEL)
    return _json({"status": "degraded" if unavailable else "ok", "models": models, "unavailable": unavailable})


def _no_models() -> ModelFileError:
    return ModelFileError(f"no model in {MODELS_DIR} could be loaded; restore models/ from git or run `make train`")


def _too_large() -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MB")


def _json(payload: dict, status: int = 200) -> flask.Response:
    return flask.Response(json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json")


def _cors_headers(origin: str | None, path: str) -> list[tuple[str, str]]:
    """CORS for the origins in ALLOWED_ORIGINS (read at each request: a test or an operator may change it)."""
    allowed = _allowed_origins(os.environ.get("ALLOWED_ORIGINS", "*"))
    headers = [*CORS_HEADERS, ("Access-Control-Allow-Methods", _methods(path))]
    if "*" in allowed:
        return [("Access-Control-Allow-Origin", "*"), *headers]
    if origin in allowed:
        return [("Access-Control-Allow-Origin", origin), *headers]
    return headers


def _methods(path: str) -> str:
    """The methods a path takes, as Allow and Access-Control-Allow-Methods list them (an unknown path: all)."""
    methods = ROUTES.get(path.rstrip("/") or "/") or sorted({m for route in ROUTES.values() for m in route})
    return ", ".join([*methods, "OPTIONS"])


@functools.lru_cache(maxsize=8)
def _allowed_origins(setting: str) -> frozenset[str]:
    return frozenset(o.strip() for o in setting.split(",") if o.strip())
