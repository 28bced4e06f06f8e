"""Here (TF env): the digits task's prepared training arrays, exactly as training.train builds them."""
import sys
sys.path.insert(0, "/work/main/function"); sys.path.insert(0, "/work/main")
from pathlib import Path
import numpy as np
from training.tasks import TASKS
from training.data import SEED
from training.negatives import training_negatives
from training.train import prepare
task = TASKS["digits"]
d = Path("/work/shared/data")
train = task.load_training(d)
neg = training_negatives(task, d, SEED, 1.0)
p = prepare(train, neg, 10, None)
np.savez_compressed("/work/main/.gpu/digits.npz", images=p.images, labels=p.labels, fit=p.fit, val=p.val)
print(p.images.shape, len(p.fit), len(p.val), np.bincount(p.labels[p.fit]))
