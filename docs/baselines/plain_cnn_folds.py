"""Measuring stick for multi-class recipes: the plain CNN of ../shared/baselines/plain_cnn.py (same layers, optimiser,
augmentation and budget-sized cosine), with a softmax head, trained on the folds of a kit run and scored out of
fold. It reads the kit store the run trained on, so both see the same stored images; the budget is split evenly
between the folds, as kit splits --max-minutes.

    python docs/baselines/plain_cnn_folds.py RUN_DIR --minutes 6

Prints one JSON line: OOF accuracy and macro-F1, plain and with D4 TTA. Not part of kit.
"""

import argparse
import json
import os
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("run_dir")
ap.add_argument("--minutes", type=float, default=6)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import albumentations as A  # noqa: E402
import h5py  # noqa: E402
import keras  # noqa: E402
import pandas as pd  # noqa: E402
from keras import layers  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

env = json.load(open(os.path.join(a.run_dir, "env.json")))
with h5py.File(env["store"], "r") as h5:
    X, y = h5["train/images"][:], h5["train/labels"][:]
    classes = list(h5.attrs["classes"])
folds = pd.read_csv(os.path.join(a.run_dir, "folds.csv"))["fold"].to_numpy()
k, n_classes = folds.max() + 1, len(classes)
Y = np.eye(n_classes, dtype=np.float32)[y]
aug = A.Compose([A.D4(p=1.0), A.HueSaturationValue(8, 12, 8, p=0.5), A.RandomBrightnessContrast(0.1, 0.1, p=0.5)])


def build():
    inp = keras.Input(X.shape[1:])
    x = layers.Rescaling(1 / 255)(inp)
    for f in (32, 64, 128, 256):
        for _ in range(2):
            x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inp, layers.Dense(n_classes, activation="softmax")(x))


def predict(model, Z, tta):
    views = [(r, f) for r in range(4) for f in (False, True)] if tta else [(0, False)]
    out = 0
    for r, f in views:
        V = np.rot90(Z, r, axes=(1, 2))
        V = V[:, :, ::-1] if f else V
        out = out + model.predict(np.ascontiguousarray(V), batch_size=128, verbose=0)
    return out / len(views)


bs, budget = 64, a.minutes * 60 / k
oof, oof_tta, epochs = np.zeros((len(X), n_classes)), np.zeros((len(X), n_classes)), []
rng = np.random.default_rng(a.seed)
started = time.time()
for fold in range(k):
    train, valid = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    keras.utils.set_random_seed(a.seed + fold)
    model = build()
    batch = lambda idx: np.stack([aug(image=im)["image"] for im in X[idx]])  # noqa: E731
    model.compile(keras.optimizers.AdamW(a.lr, weight_decay=1e-4), "categorical_crossentropy")
    model.train_on_batch(batch(train[:bs]), Y[train[:bs]])  # compile
    t = time.time()
    for _ in range(3):
        model.train_on_batch(batch(train[:bs]), Y[train[:bs]])
    steps = max(int(budget / ((time.time() - t) / 3)), 1)
    keras.utils.set_random_seed(a.seed + fold)
    model = keras.models.clone_model(model)
    schedule = keras.optimizers.schedules.CosineDecay(a.lr, steps)
    model.compile(keras.optimizers.AdamW(schedule, weight_decay=1e-4), "categorical_crossentropy")
    t0, n_epochs = time.time(), 0
    while time.time() - t0 < budget:
        p = rng.permutation(train)
        for s in range(0, len(p) - bs + 1, bs):
            model.train_on_batch(batch(p[s : s + bs]), Y[p[s : s + bs]])
            if time.time() - t0 > budget:
                break
        n_epochs += 1
    epochs.append(n_epochs)
    oof[valid], oof_tta[valid] = predict(model, X[valid], False), predict(model, X[valid], True)
print(
    json.dumps(
        {
            "baseline": "plain_cnn (softmax), kit's folds",
            "images": len(X),
            "folds": int(k),
            "minutes": a.minutes,
            "wall_minutes": round((time.time() - started) / 60, 2),
            "epochs": epochs,
            "oof_accuracy": round(accuracy_score(y, oof.argmax(1)), 4),
            "oof_macro_f1": round(f1_score(y, oof.argmax(1), average="macro"), 4),
            "oof_accuracy_tta": round(accuracy_score(y, oof_tta.argmax(1)), 4),
            "oof_macro_f1_tta": round(f1_score(y, oof_tta.argmax(1), average="macro"), 4),
        }
    )
)
