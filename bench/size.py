"""Size: the serving install vs TensorFlow's, the deploy zip, the models, and resident memory of warm servers.

Installed size is the sum of the files each distribution recorded at install
time (its RECORD), over the requirement closure: for serving, every package
`pip install -r function/requirements.txt` put into a throwaway venv (cached
in bench/artifacts/, keyed by the requirements file); for TensorFlow, the
`tensorflow` distribution in this venv and everything it requires, recursively
(what `pip show` lists as Requires).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import sysconfig
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench import ARTIFACTS, MODELS_DIR, ROOT, report, server
from bench.http_load import run_load
from bench.keras_models import card, converted_tflite, keras_file
from bench.samples import probes
from infra.run_local import free_port
from recognizer.cards import find_models

REQUIREMENTS = ROOT / "function" / "requirements.txt"
CACHE = ARTIFACTS / "serving-install.json"


def closure(site_packages: Path, roots: list[str]) -> dict[str, int]:
    """Installed bytes of each distribution in `roots` and everything they require (markers evaluated here)."""
    found = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site_packages)])}
    sizes, todo = {}, [canonicalize_name(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in sizes or name not in found:
            continue
        dist = found[name]
        sizes[name] = sum(path.stat().st_size for path in map(dist.locate_file, dist.files or []) if path.is_file())
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return sizes


def serving_install(measure: bool) -> dict[str, int] | None:
    """Bytes per package of `pip install -r function/requirements.txt` in a fresh venv; cached, None if not measured."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest() + f" python {platform.python_version()}"
    if CACHE.is_file() and json.loads(CACHE.read_text())["key"] == key:
        return json.loads(CACHE.read_text())["packages"]
    if not measure:
        return None
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        site_packages = next((venv / "lib").glob("python*/site-packages"))
        lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]  # comments may trail
        roots = [Requirement(line).name for line in lines if line]
        packages = closure(site_packages, roots)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps({"key": key, "packages": packages}, indent=1))
    return packages


def deploy_zip() -> int | None:
    """Bytes of the deploy zip, built fresh by infra/package.py (or build/function.zip where the script is absent)."""
    script = ROOT / "infra" / "package.py"
    if not script.is_file():
        existing = ROOT / "build" / "function.zip"
        return existing.stat().st_size if existing.is_file() else None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "function.zip"
        command = [sys.executable, str(script), "--out", str(out), "--models-dir", str(MODELS_DIR)]
        subprocess.run(command, check=True, capture_output=True)
        return out.stat().st_size


def function_rss(requests: int) -> int:
    """RSS of a warm function instance (default settings) after `requests` of each kind at concurrency 8."""
    port = free_port()
    process = server.start_function(port)
    try:
        for probe in probes():
            server.first_answer(process, port, probe.path, probe.body, probe.content_type)
            run_load(port, probe, 8, requests, 10)
        return server.rss_bytes(process.pid)
    finally:
        server.stop(process)


def tf_server_rss(requests: int) -> int:
    """RSS of the TensorFlow comparison server after `requests` predictions."""
    port = free_port()
    process = server.start_tf_server(port, keras_file("digits"))
    probe = probes()[0]
    try:
        server.first_answer(process, port, "/predict", probe.body, probe.content_type)
        run_load(port, probe, 1, requests, 10)
        return server.rss_bytes(process.pid)
    finally:
        server.stop(process)


def run(quick: bool = False) -> report.Section:
    serving = serving_install(measure=not quick)
    tensorflow = closure(Path(sysconfig.get_paths()["purelib"]), ["tensorflow"])
    zip_bytes = deploy_zip()
    requests = 10 if quick else 200
    rows = [
        ["serving install (function/requirements.txt)", _install(serving) if serving else "not measured (--quick)"],
        [f"TensorFlow {metadata.version('tensorflow')} install (with its requirements)", _install(tensorflow)],
        [
            "deploy zip (infra/package.py)",
            report.mb(zip_bytes) if zip_bytes else "no package.py, no build/function.zip",
        ],
    ]
    for name in find_models(MODELS_DIR):
        files = {f"shipped .tflite ({card(name)['quantization']})": MODELS_DIR / f"{name}.tflite"}
        files |= {
            f"{kind} .tflite converted here": converted_tflite(name, kind == "int8") for kind in ("int8", "float32")
        }
        files[".keras"] = keras_file(name)
        rows.append([f"model {name}", "; ".join(f"{report.mb(path.stat().st_size)} {k}" for k, path in files.items())])
    rows.append(["resident memory (VmRSS), function, warm (1 worker)", report.mb(function_rss(requests))])
    rows.append(["resident memory (VmRSS), TF comparison server, warm", report.mb(tf_server_rss(requests // 10))])
    section = report.Section("Size and memory")
    section.body += [
        "Installed sizes are the bytes of the files pip installed (each distribution's RECORD) over the requirement "
        f"closure, with the five largest packages. Memory: the function after {requests} requests of each kind "
        f"(canvas, photo, strokes, text line) at concurrency 8, master and worker together; the TF server after "
        f"{requests // 10} predictions.",
        report.table(["what", "size"], rows),
    ]
    if serving:
        ratio = sum(tensorflow.values()) / sum(serving.values())
        measured = f"{ratio:.1f}x ({report.mb(sum(serving.values()))} vs {report.mb(sum(tensorflow.values()))})"
        section.targets.append(
            report.Target("serving install vs TensorFlow's", ">= 10x smaller", measured, ratio >= 10)
        )
    else:
        section.targets.append(report.Target("serving install vs TensorFlow's", ">= 10x smaller", "not measured", None))
    return section


def _install(sizes: dict[str, int]) -> str:
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
    listed = ", ".join(f"{name} {report.mb(size)}" for name, size in largest)
    return f"{report.mb(sum(sizes.values()))} ({len(sizes)} packages; {listed})"


def main() -> None:
    report.run_standalone(run, __doc__.splitlines()[0], "no fresh install (cached result only), few requests")


if __name__ == "__main__":
    main()
