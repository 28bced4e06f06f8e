"""Validation (24,000 drawings) of logit-averaged ensembles of digits nets; inputs computed once."""
import sys, json
sys.path.insert(0, "/work/main/function"); sys.path.insert(0, "/work/main")
from pathlib import Path
import numpy as np
from training import calibrate as C
from training.tasks import TASKS
from training.evaluate import as_requested
from recognizer.inference import load_model
C.DRAWINGS = 10
task = TASKS["digits"]
paths = {"shipped": "/work/main/models/digits.tflite", **{f"{r}{s}": f"/tmp/cand/{r}{s}/digits.tflite" for r in ("last", "throughout") for s in range(1, 7)}}
models = {k: load_model(Path(p)) for k, p in paths.items()}
v = C.validation_data(task, Path("/work/shared/data"))
m0 = models["shipped"]
X = {"drawn": as_requested(m0, v.drawn), "orig": v.images, "held": v.negatives,
     **{k: as_requested(m0, p) for k, p in v.drawn_negatives.items()}}
out = {name: {k: m.outputs(x) for k, x in X.items()} for name, m in models.items()}
np.savez_compressed("/tmp/exp/ens_outputs.npz", **{f"{n}__{k}": a for n, d in out.items() for k, a in d.items()}, labels=v.drawn_labels, orig_labels=v.labels)
def score(members):
    o = {k: np.mean([out[m][k] for m in members], axis=0) for k in X}
    T = C.fit_temperature(o["orig"][:, :10], v.labels)
    rows = C.trade_off(o["drawn"], v.drawn_labels, o["orig"], {"held": o["held"], **{k: o[k] for k in v.drawn_negatives}}, 10, "extra_class", T)
    return rows[1]
for name in models:
    print(name, json.dumps(score([name])), flush=True)
for members in sys.argv[1:]:
    print(members, json.dumps(score(members.split(","))), flush=True)
