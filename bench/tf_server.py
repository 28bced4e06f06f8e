"""The comparison server: what the original app did. Flask, TensorFlow, a Keras model, `model.predict`.

    python -m bench.tf_server --model bench/artifacts/<name>-<architecture>-<classes>-<hash>.keras --port 8090

POST /predict with an image body: grayscale, ink made white on black,
resized to 28x28, `model.predict`; answers {"prediction", "confidence"}.
"""

from __future__ import annotations

import argparse
import io
import logging

import flask
import numpy as np
import tensorflow as tf
from PIL import Image

app = flask.Flask(__name__)
model = None


@app.post("/predict")
def predict() -> flask.Response:
    image = Image.open(io.BytesIO(flask.request.get_data())).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    x = np.asarray(image, np.float32) / 255.0
    if x.mean() > 0.5:  # dark ink on light paper: make the ink bright, as in MNIST
        x = 1.0 - x
    probabilities = model.predict(x[None, :, :, None], verbose=0)[0]
    return flask.jsonify(prediction=str(int(probabilities.argmax())), confidence=float(probabilities.max()))


def main() -> None:
    global model
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .keras file")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    model = tf.keras.models.load_model(args.model)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
