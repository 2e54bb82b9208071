"""`kit bench tta` twice in one process: with the TTA views built by numpy (strided views concatenated, as kit did
before) and by OpenCV (``kit.train.augment.dihedral_stack``, now); one JSON line each.

Example:
    python docs/tools/tta_views_compare.py /tmp/full/pcam.h5
"""

import json
import sys

import numpy as np

import kit.infer.predict as predict
import kit.train.augment as augment
from kit.bench import bench_tta


def numpy_views(images, views):
    return np.concatenate([augment.dihedral(images, v) for v in views])


if __name__ == "__main__":
    store = sys.argv[1]
    opencv = bench_tta(store, rounds=5)
    predict.dihedral_stack = augment.dihedral_stack = numpy_views
    print(json.dumps({"views": "numpy (before)", **bench_tta(store, rounds=5)}))
    print(json.dumps({"views": "opencv (now)", **opencv}))
