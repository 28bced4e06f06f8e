"""The HTTP server layer's limits: what a client may cost before the app sees its request.

functions-framework 3.10.2 serves through a gunicorn `BaseApplication`, so it
reads no gunicorn.conf.py and no GUNICORN_CMD_ARGS; it honours only the
environment variables WORKERS, THREADS, CLOUD_RUN_TIMEOUT_SECONDS and
GUNICORN_LOG_LEVEL, and it sets `limit_request_line` to 0 (unlimited). It does
import the function's source before it builds the server, in the deployed
function as under `make run` and the tests, so `install()` (called by
main.py) adds these settings to that application's configuration.

Stock gthread gives a connection a thread as soon as its first byte arrives,
and the thread then waits on the client for the rest of the headers and body:
a few clients that stop sending hold every thread. `ReceivingWorker` instead
receives each whole request in the worker's event loop (no thread held while a
client is slow) and hands it to a thread only when it is complete, with a
deadline for each phase the client controls.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import re
import select
import selectors
import socket
import time
from functools import partial

from werkzeug.exceptions import HTTPException

try:
    from gunicorn.http.errors import (
        ChunkMissingTerminator,
        ExpectationFailed,
        InvalidChunkExtension,
        InvalidChunkSize,
        LimitRequestHeaders,
        LimitRequestLine,
        ParseException,
        UnsupportedTransferCoding,
    )
    from gunicorn.workers.gthread import TConn, ThreadWorker
except ImportError:  # no gunicorn (functions-framework's Flask debug server): nothing to configure
    ThreadWorker = None

from . import request_log
from .api import MAX_BODY_BYTES

try:
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: nothing to trim
    _LIBC = None

HEADER_TIMEOUT_S = 10  # from connecting (or a kept-alive request's first byte) to the end of the headers
BODY_TIMEOUT_S = 30  # from the end of the headers to the end of the body: 10 MB needs about 3 Mbit/s
KEEPALIVE_IDLE_S = 5  # an idle kept-alive connection is closed after this
MAX_REQUEST_LINE = 8190  # bytes; the API's URLs are short (a path and ?model=&mode=)
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADER_BYTES = 32 * 1024  # the whole header block
MAX_FORM_PARTS = 16  # multipart parts: the API reads an image and two fields
MAX_FORM_FIELD_BYTES = 64 * 1024  # multipart fields other than files, held in memory, all together
MAX_RECEIVING_BYTES = 128 * 1024 * 1024  # requests still arriving hold at most this much per worker
MAX_CONNECTIONS = 250  # per worker: receiving, kept alive and being answered
RECV_BYTES = 256 * 1024
LINGER_S, LINGER_BYTES = 2, MAX_BODY_BYTES  # after refusing: how long and how much is read and dropped
# After the app's 413 for a declared body over the limit, that body is read and dropped as it arrives, up to this
# (Cloud Run's own limit on a request) within BODY_TIMEOUT_S, so that the client gets to read the answer.
MAX_UNREAD_BODY_BYTES = 32 * 1024 * 1024
TRIM_AFTER_BYTES = 256 * 1024  # a request larger than this is followed by malloc_trim (see handle)
THREAD_READ_GRACE_S = 2  # a thread never waits on a client longer: its request was complete when handed over
LOG = logging.getLogger("requests")  # main.py's: a refusal here gets the same one structured line as an answer

# Errors that reading a request body can raise: a malformed chunked body, a client that closed or stalled.
FRAMING_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, HTTPException)
if ThreadWorker is not None:
    FRAMING_ERRORS += (ParseException,)


def settings() -> dict:
    """The gunicorn settings this server adds to functions-framework's own."""
    return {
        "worker_class": ReceivingWorker,
        "keepalive": KEEPALIVE_IDLE_S,
        "limit_request_line": MAX_REQUEST_LINE,
        "limit_request_fields": MAX_HEADER_FIELDS,
        "limit_request_field_size": MAX_HEADER_FIELD_BYTES,
        "worker_connections": MAX_CONNECTIONS,
        "http_protocols": "h1",
        "control_socket_disable": True,  # gunicorn 27's local management socket: nothing here uses it
    }


def install() -> None:
    """Make functions-framework's gunicorn application apply `settings()` after its own."""
    if ThreadWorker is None:
        return
    from functions_framework._http import gunicorn as framework

    application = framework.GunicornApplication
    if getattr(application, "limits_installed", False):
        return
    framework_load_config = application.load_config

    def load_config(self) -> None:
        framework_load_config(self)
        for name, value in settings().items():
            self.cfg.set(name, value)

    application.load_config = load_config
    application.limits_installed = True


def error_bytes(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response with the API's JSON error body; the connection closes after it."""
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()
    reason = _REASONS.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    head += "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"  # as main.ANSWER_HEADERS, on every answer
    return (head + "Connection: close\r\n\r\n").encode() + body


_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class Refusal(Exception):
    """A request answered by the server layer itself: (status, code, message) and close."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)


class Incoming:
    """The bytes of one request received so far, and where its end is once that is known.

    `ready()` is True once the request can be parsed without waiting on the
    client: the headers are complete and the body (by Content-Length or by
    its chunks) has arrived, or the framing is already wrong, so the parser
    will refuse it from the bytes in hand.
    """

    def __init__(self, data: bytes, now: float) -> None:
        self.data = bytearray(data)
        self.started = now
        self.deadline = now + HEADER_TIMEOUT_S
        self.header_end: int | None = None
        self.header_scanned = 0
        self.body_end: int | None = None  # Content-Length bodies
        self.chunked = False
        self.chunk_at = 0  # chunked: where the next chunk-size line starts
        self.chunk_total = 0
        self.done = False
        self.expects_continue = False
        self.draining = False  # refused: what still arrives is read and dropped until the connection closes
        self.drained = 0
        self.body_unread = 0  # a Content-Length over the limit: handed over without these bytes, for the app's 413
        self.drain_limit = LINGER_BYTES  # draining: the connection closes once this much was dropped

    def feed(self, chunk: bytes, now: float) -> None:
        self.data += chunk
        self._examine(now)

    def _examine(self, now: float) -> None:
        if self.header_end is None:
            self._find_header_end(now)
            if self.header_end is None:
                return
        if self.body_end is not None:
            self.done = len(self.data) >= self.body_end
        elif self.chunked:
            self._scan_chunks()
            if not self.done and len(self.data) - self.header_end > 2 * MAX_BODY_BYTES:
                raise Refusal(413, "body_too_large", f"the request body is over {MAX_BODY_BYTES // 2**20} MB")
        else:
            self.done = True

    def _find_header_end(self, now: float) -> None:
        line_end = self.data.find(b"\r\n", 0, MAX_REQUEST_LINE + 2)
        if line_end < 0 and len(self.data) > MAX_REQUEST_LINE + 1:
            raise Refusal(414, "request_line_too_long", f"the request line is over {MAX_REQUEST_LINE} bytes")
        end = self.data.find(b"\r\n\r\n", max(0, self.header_scanned - 3))
        self.header_scanned = len(self.data)
        if (len(self.data) if end < 0 else end + 4) > MAX_HEADER_BYTES:  # whether they came in one piece or many
            raise Refusal(431, "headers_too_large", f"the request headers are over {MAX_HEADER_BYTES} bytes")
        if end < 0:
            return
        self.header_end = end + 4
        self.deadline = now + BODY_TIMEOUT_S
        head = bytes(self.data[: self.header_end]).lower()
        lengths = re.findall(rb"\r\ncontent-length:[ \t]*([^\r]*)", head)
        codings = re.findall(rb"\r\ntransfer-encoding:[ \t]*([^\r]*)", head)
        self.expects_continue = _EXPECT_CONTINUE.search(head) is not None
        if codings:
            if len(codings) == 1 and codings[0].strip() == b"chunked" and not lengths:
                self.chunked, self.chunk_at = True, self.header_end
            else:
                self.done = True  # unusual or ambiguous framing: the parser refuses it from the headers alone
        elif lengths:
            value = lengths[0].strip()
            if len(lengths) > 1 or not value.isdigit():
                self.done = True
            elif int(value) > MAX_BODY_BYTES:
                self.done = True  # the app answers 413 from the Content-Length without reading the body
                self.body_unread = int(value)
            else:
                self.body_end = self.header_end + int(value)

    def _scan_chunks(self) -> None:
        data, longest_line = self.data, MAX_HEADER_FIELD_BYTES + 2  # the parser's limit on a chunk-size line
        while True:
            line_end = data.find(b"\r\n", self.chunk_at, self.chunk_at + longest_line)
            if line_end < 0:
                if len(data) - self.chunk_at > longest_line:
                    self.done = True  # a size line the parser will refuse
                return
            size_text = bytes(data[self.chunk_at : line_end]).split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                self.done = True
                return
            size = int(size_text, 16)
            if size > MAX_BODY_BYTES - self.chunk_total:
                raise Refusal(413, "body_too_large", f"the request body is over {MAX_BODY_BYTES // 2**20} MB")
            if size == 0:  # the last chunk, then optional trailer lines and an empty line
                if data[line_end : line_end + 4] == b"\r\n\r\n" or data.find(b"\r\n\r\n", line_end) >= 0:
                    self.done = True
                return
            chunk_end = line_end + 2 + size
            if len(data) < chunk_end + 2:
                return
            if data[chunk_end : chunk_end + 2] != b"\r\n":
                self.done = True
                return
            self.chunk_at = chunk_end + 2
            self.chunk_total += size

    def request_bytes(self) -> bytes:
        """The bytes for the parser, without `Expect: 100-continue`: this layer has already answered it.

        A request whose body stays unread gets `Connection: close` as its first
        header (gunicorn heeds the first): its answer then says the connection
        closes, as it will, instead of announcing keep-alive.
        """
        data = bytes(self.data)
        if self.expects_continue and self.header_end is not None:
            head = _EXPECT_CONTINUE.sub(b"", data[: self.header_end])
            data = head + data[self.header_end :]
        if self.body_unread:
            line_end = data.find(b"\r\n") + 2
            data = data[:line_end] + b"Connection: close\r\n" + data[line_end:]
        return data


class ReceivedSocket:
    """The socket as the request parser sees it: first the bytes already received, then reads that wait until `deadline`.

    Replaying from here, rather than putting the whole request back into
    gunicorn's read buffer, keeps that buffer small: it copies its contents on
    every read, which for a 10 MB body read in 8 KB pieces is quadratic.
    """

    def __init__(self, sock: socket.socket, data: bytes, deadline: float) -> None:
        self._sock = sock
        self._data = memoryview(data)
        self.deadline = deadline

    def recv(self, size: int) -> bytes:
        if self._data:
            piece, self._data = bytes(self._data[:size]), self._data[size:]
            return piece
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
            raise TimeoutError("the client stopped sending")
        return self._sock.recv(size)

    def take_rest(self) -> bytes:
        """What was received but not read: the start of a pipelined next request."""
        rest, self._data = bytes(self._data), memoryview(b"")
        return rest

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


if ThreadWorker is not None:

    class ReceivingWorker(ThreadWorker):
        """gthread whose event loop receives each request whole before a thread serves it.

        A connection costs no thread while it is idle, sending headers or
        sending its body; each phase has a deadline (HEADER_TIMEOUT_S,
        BODY_TIMEOUT_S, KEEPALIVE_IDLE_S), after which it is answered 408 and
        closed. What this layer refuses itself (408, 413, 414, 431, 503) and
        what the HTTP parser refuses (a bad request line, bad headers) is JSON
        like the app's errors, but without CORS headers: the request's Origin
        is not known there.
        """

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.receiving: dict[TConn, Incoming] = {}
            self.receiving_bytes = 0
            self.serving = 0  # requests handed to threads and not yet finished
            self.large_since_trim = False  # a large request was served since the heap was last trimmed

        def accept(self, listener) -> None:
            try:
                client, address = listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno == errno.ECONNABORTED:
                    return
                raise
            self.nr_conns += 1
            self._receive(TConn(self.cfg, client, address, listener.getsockname()), b"")

        def on_client_socket_readable(self, conn, client) -> None:
            """A kept-alive connection's next request starts: receive it like a new one."""
            self.poller.unregister(client)
            self.keepalived_conns.remove(conn)
            self._receive(conn, b"")

        def finish_request(self, conn, fs) -> None:
            """Bytes the client sent behind the answered request (pipelining) start the next one here, not in a thread.

            After the app's 413 for a Content-Length over the limit, the body is
            still arriving: it is read and dropped for a while, as after a refusal,
            so the client gets to read the answer.
            """
            self.serving -= 1
            unread, conn.body_unread = getattr(conn, "body_unread", 0), 0
            if unread and conn.sock.fileno() != -1:  # not already closed by the thread (a TLS error)
                self._receive(conn, b"")
                self._linger(conn, self.receiving[conn], BODY_TIMEOUT_S, min(unread, MAX_UNREAD_BODY_BYTES))
                return
            if fs.done() and not fs.cancelled() and fs.exception() is None and fs.result() is True and self.alive:
                leftover = conn.parser.unreader.take_buffered() + conn.parser.unreader.sock.take_rest()
                if leftover:
                    self._receive(conn, leftover)
                    return
            super().finish_request(conn, fs)

        def murder_pending(self) -> None:
            """Each turn of the event loop (at least once a second): expire deadlines, trim the heap when idle.

            Only after a large request: trimming after small ones would undo main.py's
            keep_freed_memory, which saves a normal request its page faults.
            """
            super().murder_pending()
            if self.large_since_trim and not self.serving and _LIBC is not None:
                self.large_since_trim = False
                _LIBC.malloc_trim(0)  # nothing in flight: what requests freed goes back to the OS
            now = time.monotonic()
            for conn, incoming in list(self.receiving.items()):
                if incoming.deadline <= now:
                    if incoming.draining or (incoming.header_end is None and not incoming.data):
                        self._close(conn)  # connected and never sent anything: nothing to answer
                        continue
                    phase, limit = ("headers", HEADER_TIMEOUT_S)
                    if incoming.header_end is not None:
                        phase, limit = ("body", BODY_TIMEOUT_S)
                    message = f"the request {phase} did not arrive within {limit} s"
                    self._refuse(conn, Refusal(408, "request_timeout", message))

        def handle_error(self, req, client, addr, exc) -> None:
            """The HTTP parser's refusals as the API's JSON errors (gunicorn's own are HTML)."""
            status, code = _PARSER_ERRORS.get(type(exc), (400, "bad_request"))
            if isinstance(exc, ParseException):
                message = f"the request is not valid HTTP/1.1 ({str(exc)[:200]})"
            else:
                status, code, message = 500, "internal", "the server failed; please try again"
            answer = error_bytes(status, code, message)
            line = (req.method, req.uri[: request_log.MAX_LOGGED_URL]) if req is not None else (None, None)
            _log_refusal(status, code, line, addr, None, len(answer), exc)
            with contextlib.suppress(OSError):
                client.sendall(answer)

        def _receive(self, conn, data: bytes) -> None:
            incoming = Incoming(b"", time.monotonic())
            self.receiving[conn] = incoming
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            if data:
                self._take(conn, incoming, data)

        def _on_readable(self, conn, _sock) -> None:
            incoming = self.receiving[conn]
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._close(conn)
                return
            if incoming.draining:
                incoming.drained += len(data)
                if incoming.drained >= incoming.drain_limit:
                    self._close(conn)
                return
            self._take(conn, incoming, data)

        def _take(self, conn, incoming: Incoming, data: bytes) -> None:
            if self.receiving_bytes + len(data) > MAX_RECEIVING_BYTES:
                message = "the server is receiving too many requests at once; retry shortly"
                self._refuse(conn, Refusal(503, "busy", message))
                return
            self.receiving_bytes += len(data)
            try:
                had_headers = incoming.header_end is not None
                incoming.feed(data, time.monotonic())
            except Refusal as refusal:
                self._refuse(conn, refusal)
                return
            if incoming.done:
                self._hand_over(conn, incoming)
            elif incoming.expects_continue and not had_headers and incoming.header_end is not None:
                with contextlib.suppress(OSError):
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")

        def _forget(self, conn) -> Incoming:
            incoming = self.receiving.pop(conn)
            self.receiving_bytes -= len(incoming.data)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            return incoming

        def _hand_over(self, conn, incoming: Incoming) -> None:
            self._forget(conn)
            conn.sock.setblocking(True)
            conn.init()
            deadline = time.monotonic() + THREAD_READ_GRACE_S
            data = incoming.request_bytes()
            conn.parser.unreader.sock = ReceivedSocket(conn.sock, data, deadline)
            conn.data_ready = True
            conn.trim_after = len(data) > TRIM_AFTER_BYTES
            conn.body_unread = incoming.body_unread
            self.serving += 1
            self.large_since_trim |= conn.trim_after
            self.enqueue_req(conn)

        def handle(self, conn):
            """Serve one request in a thread; after a large one, give the heap it freed back to the OS.

            glibc keeps freed memory below its trim threshold (main.py sets 64 MB
            an arena, for speed), and fragments it: a worker's RSS then drifts up
            with every burst of large requests. Normal requests are small and skip
            this; the event loop trims again once no request is in flight.
            """
            try:
                return super().handle(conn)
            finally:
                if getattr(conn, "trim_after", False) and _LIBC is not None:
                    conn.trim_after = False
                    _LIBC.malloc_trim(0)

        def _refuse(self, conn, refusal: Refusal) -> None:
            """Answer, then read and drop what the client still sends for LINGER_S before closing.

            Closing with unread bytes would make the kernel reset the connection, and
            the client could lose the answer before reading it.
            """
            incoming = self.receiving[conn]
            answer = error_bytes(refusal.status, refusal.code, refusal.message)
            line = request_log.request_line(bytes(incoming.data[:2048]))
            _log_refusal(
                refusal.status, refusal.code, line, conn.client, time.monotonic() - incoming.started, len(answer)
            )
            self.receiving_bytes -= len(incoming.data)
            incoming.data = bytearray()
            try:
                conn.sock.send(answer)
            except OSError:
                self._close(conn)
                return
            self._linger(conn, incoming)

        def _linger(self, conn, incoming: Incoming, seconds: float = LINGER_S, limit: int = LINGER_BYTES) -> None:
            """The answer sent: half-close, then read and drop what arrives for `seconds`, at most `limit` bytes."""
            incoming.draining, incoming.deadline, incoming.drain_limit = True, time.monotonic() + seconds, limit
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn)

        def _close(self, conn) -> None:
            self._forget(conn)
            self.nr_conns -= 1
            conn.close()

    def _log_refusal(
        status: int,
        code: str,
        line: tuple[str | None, str | None],
        address,
        latency_s: float | None,
        size: int,
        error: BaseException | None = None,
    ) -> None:
        """The one structured log line of a request this layer answered itself, as main.py writes for the app's:
        WARNING for a refusal, ERROR with the traceback for a fault here."""
        ip = str(address[0]) if isinstance(address, tuple) and address else None  # a unix socket's is a string
        http = request_log.http_request(*line, status, latency_s, None, size, None, ip, None)
        fields = {"httpRequest": http, "outcome": code}
        if request_log.severity_of(status) == logging.ERROR and error is not None:
            LOG.error("the server layer failed", exc_info=error, extra={"fields": fields})
        else:
            detail = f": {str(error)[:200]}" if error is not None else ""
            LOG.log(request_log.severity_of(status), f"refused {status} {code}{detail}", extra={"fields": fields})

    _PARSER_ERRORS = {
        LimitRequestLine: (414, "request_line_too_long"),
        LimitRequestHeaders: (431, "headers_too_large"),
        UnsupportedTransferCoding: (501, "unsupported_transfer_encoding"),
        ExpectationFailed: (417, "expectation_failed"),
        InvalidChunkSize: (400, "bad_chunked_body"),
        ChunkMissingTerminator: (400, "bad_chunked_body"),
        InvalidChunkExtension: (400, "bad_chunked_body"),
    }
