"""Hostile traffic against the function on 127.0.0.1, started as the cloud starts it (one gunicorn worker).

Four tables:
1. each of the costliest requests of at most 10 MB, alone: its answer, wall time, and the worker's CPU
   seconds and peak resident memory for it;
2. eight of each at once: the worker's peak and settled resident memory;
3. 20 clients sending a body at 1 byte/s and 8 that sent headers and then nothing (and 8 that connect and
   send nothing), held open while normal requests are timed; when the server closed each kind;
4. a mixed soak: every kind of request from four clients for 60 s, the worker's memory at start and end.

CPU and memory are read from /proc for the worker process (utime + stime; VmHWM, reset through
clear_refs before each measurement), so they include receiving and parsing the request, not only the app.

    python -m bench.hostile [--quick]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import statistics
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench import report, server
from infra.run_local import free_port
from recognizer.server_limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S
from recognizer.warm_up import SEVEN

MB = 1024 * 1024
CPU_TARGET_S = 0.3
RSS_TARGET_MB = 400
SLOW_CLIENTS, HEADER_ONLY_CLIENTS, SILENT_CLIENTS = 20, 8, 8


@dataclass(frozen=True)
class Attack:
    """One request as raw HTTP/1.1 bytes, and the statuses a correct server may answer it with."""

    name: str
    raw: bytes
    statuses: tuple[int, ...]


def http(method: str, target: str, body: bytes = b"", content_type: str = "", headers: tuple = ()) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Origin: http://localhost:8000", "Connection: close"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body


def seven_png() -> bytes:
    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    for stroke in SEVEN:
        draw.line([tuple(p) for p in stroke], fill=0, width=18, joint="curve")
    return _save(image, "PNG")


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(width: int, height: int, depth: int = 8, color: int = 6, text_bytes: int = 0) -> bytes:
    """A PNG whose every row uses the Paeth filter (the costliest to undo), compressed from constant rows."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x04" + b"\x01" * (width * channels * depth // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    text = b""
    if text_bytes:  # a zTXt chunk that inflates to text_bytes
        text = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b" " * text_bytes, 9))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + text + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def small_word_jpeg() -> bytes:
    """What text mode decodes twice at the most (decode.decode_region): a 12 MP photo of grainy paper, just
    under REGION_FILE_BYTES, with a word 28 px tall (4 px at the working size), whose part is read again."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(220, 248, (3000, 4000, 3), dtype=np.uint8))  # grain: 3.9 MB at quality 93
    ImageDraw.Draw(image).text((1900, 1480), "HELLO", fill=(20, 20, 20), font=ImageFont.load_default(40))
    return _save(image, "JPEG", quality=93)


def combs_png() -> bytes:
    """The costliest text line found for its size (a review's): seven combs of bars joined by a hair, which the
    reader cuts between every two bars, 448 bytes giving 133 atoms and 469 candidates to score and search."""
    image = Image.new("L", (1888, 80), 255)
    draw = ImageDraw.Draw(image)
    for left in range(20, 1888 - 240, 264):
        draw.rectangle((left, 58, left + 240, 59), fill=0)
        for bar in range(left, left + 240, 5):
            draw.rectangle((bar, 20, bar + 1, 59), fill=0)
    return _save(image, "PNG")


def big_jpeg(progressive: bool) -> bytes:
    """A 5000x5000 (25 MP) photo-like JPEG: a paper gradient with one dark stroke."""
    paper = np.repeat(np.linspace(150, 230, 5000, dtype=np.float32)[:, None], 5000, axis=1).astype(np.uint8)
    paper[2000:3000, 2400:2600] = 30
    return _save(Image.fromarray(paper).convert("RGB"), "JPEG", quality=85, progressive=progressive)


def multipart(parts: int) -> tuple[bytes, str]:
    """`parts` (at least 1) tiny form fields of about 64 bytes, `model` and then `mode` again and again, and the image."""
    model = b'--XX\r\nContent-Disposition: form-data; name="model"\r\n\r\ndigits\r\n'
    mode = b'--XX\r\nContent-Disposition: form-data; name="mode"\r\n\r\nsingle\r\n'
    image = b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + seven_png()
    return model + mode * (parts - 1) + image + b"\r\n--XX--\r\n", "multipart/form-data; boundary=XX"


def near_boundaries() -> tuple[bytes, str]:
    """One 9 MB file part full of line breaks and dashes that look like the start of a boundary."""
    head = b'--XXXXXXXXXXXXXXXX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    return head + b"\r\n--XXXXXXXXXXXXXXX" * (9 * MB // 19) + b"\r\n--XXXXXXXXXXXXXXXX--\r\n", (
        "multipart/form-data; boundary=XXXXXXXXXXXXXXXX"
    )


def strokes_json(points: list, mode: str = "single") -> bytes:
    return json.dumps({"strokes": points, "mode": mode}).encode()


def attacks() -> list[Attack]:
    """The costliest requests of at most 10 MB found, and a normal one to compare with."""
    circle = [[round(140 + 100 * np.cos(i / 3000), 2), round(140 + 100 * np.sin(i / 3000), 2)] for i in range(20_000)]
    zigzag = [[0, 0] if i % 2 else [10_000, 10_000] for i in range(20_000)]
    form, form_type = multipart(150_000)
    dashes, dashes_type = near_boundaries()
    return [
        Attack("normal: canvas PNG 280x280", http("POST", "/predict", seven_png(), "image/png"), (200,)),
        Attack("normal: strokes JSON", http("POST", "/predict", strokes_json(SEVEN), "application/json"), (200,)),
        Attack(
            f"multipart, 150,000 parts ({len(form) / MB:.1f} MB)", http("POST", "/predict", form, form_type), (413,)
        ),
        Attack(
            "multipart, one 9 MB part of near-boundaries",
            http("POST", "/predict", dashes, dashes_type),
            (400, 413, 415),
        ),
        Attack("PNG 5000x5000 16-bit RGBA", http("POST", "/predict", png(5000, 5000, 16), "image/png"), (413,)),
        Attack(
            "PNG 2508x2508 RGBA (largest decoded)", http("POST", "/predict", png(2508, 2508), "image/png"), (200, 422)
        ),
        Attack("PNG 5000x5000 grey 8-bit", http("POST", "/predict", png(5000, 5000, 8, 0), "image/png"), (200, 422)),
        Attack(
            "PNG with 60 MB of zTXt text",
            http("POST", "/predict", png(280, 280, text_bytes=60 * MB), "image/png"),
            (400, 413, 422),
        ),
        Attack(
            "GIF 5000x5000",
            http("POST", "/predict", _save(Image.new("P", (5000, 5000)), "GIF"), "image/gif"),
            (413,),
        ),
        Attack("JPEG 25 MP baseline", http("POST", "/predict", big_jpeg(False), "image/jpeg"), (200, 422)),
        Attack(
            "JPEG 12 MP of grain, a small word, text mode (decoded twice)",
            http("POST", "/predict?model=characters&mode=text", small_word_jpeg(), "image/jpeg"),
            (200, 422),
        ),
        Attack("JPEG 25 MP progressive", http("POST", "/predict", big_jpeg(True), "image/jpeg"), (413,)),
        Attack(
            "PNG of combs cut into 133 slices, text mode",
            http("POST", "/predict?model=characters&mode=text", combs_png(), "image/png"),
            (200, 422),
        ),
        Attack(
            "strokes: 20,000 points, dense circle, text mode",
            http("POST", "/predict", strokes_json([circle], "text"), "application/json"),
            (200, 422),
        ),
        Attack(
            "strokes: 20,000 points, full-canvas zigzag",
            http("POST", "/predict", strokes_json([zigzag]), "application/json"),
            (413,),
        ),
        Attack(
            "JSON: 10 MB of tiny lists",
            http("POST", "/predict", b'{"strokes":[[' + b",".join([b"[1,1]"] * 1_700_000) + b"]]}", "application/json"),
            (413,),
        ),
        Attack(
            "JSON: one 9 MB field name",
            http("POST", "/predict", b'{"' + b"m" * (9 * MB) + b'": 1}', "application/json"),
            (400,),
        ),
        Attack(
            "JSON: 20,000 keys, the last one twice",
            http(
                "POST",
                "/predict",
                b"{" + b",".join(b'"k%d":1' % i for i in (*range(20_000), 19_999)) + b"}",
                "application/json",
            ),
            (400,),
        ),
        Attack("request line of 1 MB", http("GET", "/health?" + "a" * MB), (414,)),
        Attack("headers: 10,000 fields", http("GET", "/health", headers=("X-A: b",) * 10_000), (431,)),
        Attack(
            "chunked: bad chunk size",
            http("POST", "/predict", b"", "image/png", ("Transfer-Encoding: chunked",)).replace(
                b"Content-Length: 0\r\n", b""
            )
            + b"ZZ\r\nabc\r\n0\r\n\r\n",
            (400,),
        ),
    ]


def send(port: int, raw: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """Send raw bytes on a new connection and read the answer until the server closes: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused before all was sent:
            connection.sendall(raw)  # the answer may still be there
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return 0, answer[:200]


class Worker:
    """The one gunicorn worker process of a started server: its CPU time and memory from /proc."""

    def __init__(self, process) -> None:
        children = server.descendants(process.pid)
        if len(children) != 1:
            raise RuntimeError(f"expected one worker process, found {children}")
        self.pid = children[0]

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, field: str = "VmRSS") -> float:
        with open(f"/proc/{self.pid}/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
        return int(line.split()[1]) / 1024

    def reset_peak(self) -> None:
        with open(f"/proc/{self.pid}/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS


def start():
    port = free_port()
    process = server.start_function(port)
    server.first_answer(process, port, "/predict", seven_png(), "image/png")
    return process, port


def measure_alone(port: int, worker: Worker, attack: Attack, repeats: int) -> dict:
    """The costliest of `repeats` sends: wall time, worker CPU and peak RSS."""
    worst = {"status": None, "wall": 0.0, "cpu": 0.0, "peak": 0.0, "ok": True}
    for _ in range(repeats):
        worker.reset_peak()
        cpu, started = worker.cpu_seconds(), time.perf_counter()
        status, _ = send(port, attack.raw)
        wall = time.perf_counter() - started
        time.sleep(0.05)  # the worker's bookkeeping after the answer counts too
        worst["cpu"] = max(worst["cpu"], worker.cpu_seconds() - cpu)
        worst["wall"] = max(worst["wall"], wall)
        worst["peak"] = max(worst["peak"], worker.memory_mb("VmHWM"))
        worst["status"] = status
        worst["ok"] &= status in attack.statuses
    return worst


def measure_eight(port: int, worker: Worker, attack: Attack) -> dict:
    worker.reset_peak()
    with_threads(lambda _: send(port, attack.raw), 8)
    time.sleep(0.2)
    return {"peak": worker.memory_mb("VmHWM"), "after": worker.memory_mb()}


def with_threads(task: Callable[[int], object], count: int) -> list:
    results = [None] * count

    def run(index: int) -> None:
        results[index] = task(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def hold_slow_clients(port: int, seconds: float) -> tuple[list[float], dict[str, list[float]]]:
    """Hold slow and idle clients open for `seconds` while timing normal requests; (latencies, close times)."""
    closed: dict[str, list[float]] = {"slow body": [], "headers then nothing": [], "silent": []}
    stop = threading.Event()
    started = time.monotonic()
    head = http("POST", "/predict", b"", "image/png").replace(b"Content-Length: 0", b"Content-Length: 100000")

    def client(kind: str) -> None:
        connection = socket.create_connection(("127.0.0.1", port))
        connection.settimeout(1.0)
        try:
            if kind != "silent":
                connection.sendall(head)
            while not stop.is_set():
                if kind == "slow body":
                    connection.sendall(b"\0")
                try:
                    if connection.recv(65536) == b"":  # anything else is the 408 that comes before the close
                        closed[kind].append(time.monotonic() - started)
                        return
                except TimeoutError:
                    pass
        except OSError:
            closed[kind].append(time.monotonic() - started)
        finally:
            connection.close()

    kinds = ["slow body"] * SLOW_CLIENTS + ["headers then nothing"] * HEADER_ONLY_CLIENTS + ["silent"] * SILENT_CLIENTS
    threads = [threading.Thread(target=client, args=(kind,), daemon=True) for kind in kinds]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # all connected and sending
    normal = http("POST", "/predict", seven_png(), "image/png")
    latencies = []
    while time.monotonic() - started < seconds:
        begun = time.perf_counter()
        status, _ = send(port, normal)
        latencies.append(time.perf_counter() - begun if status == 200 else float("inf"))
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    return latencies, closed


def soak(port: int, worker: Worker, seconds: float, mix: list[Attack]) -> dict:
    """Four clients loop over `mix` for `seconds`; the worker's RSS is sampled every second.

    The first and last samples are taken idle, 2 s after any request, as an instance sits between bursts.
    """
    time.sleep(2.0)
    samples = [worker.memory_mb()]
    stop = time.monotonic() + seconds
    counts = {"requests": 0, "unexpected": 0}
    unexpected: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        position = index
        while time.monotonic() < stop:
            attack = mix[position % len(mix)]
            position += 1
            status, _ = send(port, attack.raw)
            with lock:
                counts["requests"] += 1
                if status not in attack.statuses:
                    counts["unexpected"] += 1
                    unexpected.append(f"{attack.name}: {status}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop:
        time.sleep(1.0)
        samples.append(worker.memory_mb())
    for thread in threads:
        thread.join()
    time.sleep(2.0)
    samples.append(worker.memory_mb())
    return {"samples": samples, "first_unexpected": unexpected[:3], **counts}


WORST_FIVE = (
    "multipart, 150,000",
    "PNG 5000x5000 16-bit",
    "JPEG 25 MP",
    "strokes: 20,000 points",
    "request line",
    "PNG 2508x2508",
)


def run(quick: bool = False) -> report.Section:
    section = report.Section("Hostile traffic (one worker, as deployed)")
    everything = attacks()
    process, port = start()
    try:
        worker = Worker(process)
        for attack in everything:  # warm every path once: the first use of a decoder loads its code
            send(port, attack.raw)
        rows, worst_cpu, wrong = [], 0.0, []
        for attack in everything:
            result = measure_alone(port, worker, attack, 1 if quick else 3)
            worst_cpu = max(worst_cpu, result["cpu"]) if attack.name[:6] != "normal" else worst_cpu
            if not result["ok"]:
                wrong.append(f"{attack.name}: {result['status']}")
            rows.append(
                [
                    attack.name,
                    report.mb(len(attack.raw)),
                    result["status"],
                    report.ms(result["wall"] * 1000),
                    f"{result['cpu']:.2f}",
                    f"{result['peak']:.0f}",
                ]
            )
        section.body.append(
            "Each request alone, the costliest of "
            f"{1 if quick else 3} sends (CPU from /proc in clock ticks, 10 ms resolution):\n\n"
            + report.table(["request", "size", "status", "wall ms", "worker CPU s", "worker peak RSS MB"], rows)
        )
        if wrong:
            section.body.append("Unexpected statuses: " + "; ".join(wrong))
        section.targets.append(
            report.Target(
                "CPU per request (<= 10 MB)",
                f"<= {CPU_TARGET_S} CPU-s",
                f"{worst_cpu:.2f} CPU-s",
                worst_cpu <= CPU_TARGET_S,
            )
        )

        rows, worst_peak = [], 0.0
        for attack in (a for a in everything if a.name.startswith(WORST_FIVE)):
            result = measure_eight(port, worker, attack)
            worst_peak = max(worst_peak, result["peak"])
            rows.append([attack.name, f"{result['peak']:.0f}", f"{result['after']:.0f}"])
        section.body.append(
            "Eight at once:\n\n" + report.table(["request x 8", "worker peak RSS MB", "RSS after MB"], rows)
        )
        section.targets.append(
            report.Target(
                "worker peak RSS, 8 worst at once",
                f"< {RSS_TARGET_MB} MB",
                f"{worst_peak:.0f} MB",
                worst_peak < RSS_TARGET_MB,
            )
        )

        hold = 5.0 if quick else BODY_TIMEOUT_S + 6
        latencies, closed = hold_slow_clients(port, hold)
        p50 = report.percentile_ms(latencies, 50)
        rows = [
            [
                kind,
                len(times),
                f"{min(times):.1f}" if times else "-",
                f"{max(times):.1f}" if times else "-",
            ]
            for kind, times in closed.items()
        ]
        section.body.append(
            f"{SLOW_CLIENTS} clients sending a body at 1 byte/s, {HEADER_ONLY_CLIENTS} that sent headers then "
            f"nothing, {SILENT_CLIENTS} that connected and sent nothing, held for {hold:.0f} s; a normal PNG "
            f"request every 0.1 s meanwhile: n={len(latencies)}, p50 {report.ms(p50)} ms, "
            f"p95 {report.ms(report.percentile_ms(latencies, 95))} ms, max {report.ms(max(latencies) * 1000)} ms. "
            f"Documented timeouts: headers {HEADER_TIMEOUT_S} s, body {BODY_TIMEOUT_S} s after the headers.\n\n"
            + report.table(["client", "closed by the server", "first close s", "last close s"], rows)
        )
        section.targets.append(
            report.Target(
                f"normal p50 with {SLOW_CLIENTS} slow + {HEADER_ONLY_CLIENTS} idle clients",
                "<= 100 ms",
                f"{report.ms(p50)} ms",
                p50 <= 100,
            )
        )

        seconds = 5 if quick else 60
        result = soak(port, worker, seconds, everything)
        start_mb, end_mb = result["samples"][0], result["samples"][-1]
        change = (end_mb - start_mb) / start_mb
        section.body.append(
            f"Mixed soak: every request above from 4 clients for {seconds} s ({result['requests']} requests, "
            f"{result['unexpected']} unexpected statuses); worker RSS start {start_mb:.0f} MB, end {end_mb:.0f} MB "
            f"({change:+.1%}), max {max(result['samples']):.0f} MB, median {statistics.median(result['samples']):.0f} MB."
            + (f" Unexpected: {'; '.join(result['first_unexpected'])}." if result["first_unexpected"] else "")
        )
        section.targets.append(
            report.Target(
                "worker RSS over a mixed soak", "end within 10 % of start", f"{change:+.1%}", abs(change) <= 0.1
            )
        )
    finally:
        server.stop(process)
    return section


if __name__ == "__main__":
    report.run_standalone(run, __doc__.splitlines()[0], "tiny counts and short holds: checks that it runs")
