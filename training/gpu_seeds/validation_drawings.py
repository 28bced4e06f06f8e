import sys, json
sys.path.insert(0, "/work/main/function"); sys.path.insert(0, "/work/main")
from pathlib import Path
import numpy as np
from training import calibrate as C
from training.tasks import TASKS
from recognizer.inference import load_model
C.DRAWINGS = int(sys.argv[1])
task = TASKS["digits"]
model = load_model(Path(sys.argv[2]))
v = C.validation_data(task, Path("/work/shared/data"))
drawn = model.outputs(C.as_requested(model, v.drawn))
T = model.card["calibration"]["temperature"]
res = C.compare(drawn, model.outputs(v.negatives), 10, task.reject_budget, T)
print(len(v.drawn), json.dumps(res["extra_class"]))
negs = {name: model.outputs(C.as_requested(model, p)) for name, p in v.drawn_negatives.items()}
rows = C.trade_off(drawn, v.drawn_labels, model.outputs(v.images), {"held": model.outputs(v.negatives), **negs}, 10, "extra_class", T)
for r in rows[:4]: print(json.dumps(r))
