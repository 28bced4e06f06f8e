"""A .keras net -> int8 tflite + card in OUTDIR, as training.train.run writes them (no training, no checkpoint)."""
import sys
sys.path[:0] = ["/work/main", "/work/main/function"]
from pathlib import Path
import numpy as np, keras
from training.train import prepare, _score, _candidate, CALIBRATION_IMAGES
from training.convert import to_tflite
from training.calibrate import calibrate, validation_set
from training.card import build_card
from training.data import SEED, split
from training.negatives import training_negatives
from training.tasks import TASKS
from training.store import write_atomically, write_json
src, out = Path(sys.argv[1]), Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
task = TASKS["digits"]; d = Path("/work/shared/data")
train, evaluation = task.load_training(d), task.load_evaluation(d)
data = prepare(train, training_negatives(task, d, SEED, 1.0), 10, None)
model = keras.saving.load_model(src)
x_eval = evaluation.images.astype(np.float32) / 255.0
keras_accuracy = round(float(np.mean(model.predict(x_eval[..., None], verbose=0)[:, :10].argmax(1) == evaluation.labels)), 5)
fit_images = train.images[split(len(train.images))[1][:CALIBRATION_IMAGES]]
tflite = to_tflite(model, fit_images)
report, details = _score(tflite, task, 11, x_eval, evaluation.labels)
validation = validation_set(data.images[data.real_val], data.labels[data.real_val], data.images[data.negative_val])
calibration, rejection = calibrate(_candidate(tflite, task, 11), task, validation, (x_eval, evaluation.labels), diagram=out / "calibration.png")
summary = {"source": str(src), "keras_accuracy": keras_accuracy, "tflite_accuracy": report["accuracy"]}
card = build_card(task=task, tflite=tflite, input_details=details[0], output_details=details[1], keras_accuracy=keras_accuracy,
    tflite_report=report, quantization="int8", data_files=train.files | evaluation.files, training=summary,
    rejection=rejection, calibration=calibration)
write_atomically(out / "digits.tflite", tflite); write_json(out / "digits.json", card)
print(src.name, "keras t10k", keras_accuracy, "tflite", report["accuracy"], flush=True)
