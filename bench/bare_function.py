"""The physical limit of this stack: the same server with one LiteRT invoke and nothing else behind it.

    functions-framework --source bench/bare_function.py --target predict

POST a raw 784-byte body (a 28x28 grayscale image, ink bright) and get
{"prediction": k}: no decoding, no preprocessing, no validation beyond the
length. It runs under the same functions-framework, gunicorn worker and
server limits as function/main.py, so the difference between the two in one
run is what the function's own work costs (bench/http_load.py).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as function/main.py

import flask
import functions_framework
import numpy as np

from recognizer import server_limits
from recognizer.inference import Interpreter, quantize

server_limits.install()  # the function's server layer, so both run on the same stack

MODEL = Path(os.environ.get("MODELS_DIR") or Path(__file__).resolve().parent.parent / "models") / "digits.tflite"
interpreter = Interpreter(model_path=str(MODEL), num_threads=1)
interpreter.allocate_tensors()
INPUT, OUTPUT = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
lock = threading.Lock()  # the interpreter is not thread-safe


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    body = request.get_data()
    if len(body) != 28 * 28:
        return flask.Response('{"error":"send 784 bytes"}', status=400, mimetype="application/json")
    image = quantize(np.frombuffer(body, np.uint8).reshape(INPUT["shape"]) / np.float32(255), INPUT)
    with lock:
        interpreter.set_tensor(INPUT["index"], image)
        interpreter.invoke()
        scores = interpreter.get_tensor(OUTPUT["index"])[0]
    return flask.Response(json.dumps({"prediction": int(scores.argmax())}), mimetype="application/json")
