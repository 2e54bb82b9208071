"""One fold on several machines (TensorFlow): ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``.

Every machine runs the same ``kit train`` command with its own ``TF_CONFIG``
(``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": i}}``);
``kit.train.device.detect_device`` creates the strategy before any TensorFlow op. The contract: every worker
trains the same folds from the same epochs (``check_workers_agree`` checks it first) and takes part in every
collective: each step of ``fit`` (on ``fit_inputs``: its share of each batch), the epoch-end averaging of
``worker_callbacks`` and the validation ``predict``; so every worker holds the same weights and takes the same
decisions. Only the chief (``chief:0``, else ``worker:0``; ``Device.chief``) writes the run folder, the others write
the same files into a scratch folder (``open_worker_run``); nothing a worker decides alone (a clock) may stop or
steer training (``check_multi_worker``).

Example:
    >>> cluster_from_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}')
    Cluster(workers=2, rank=0, chief=True)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import tempfile
import zlib
from pathlib import Path

import keras
import numpy as np

from kit.config import identity
from kit.errors import KitError
from kit.run import RunFolder, open_run

__all__ = [
    "Cluster",
    "cluster_from_tf_config",
    "multi_worker_strategy",
    "fit_inputs",
    "worker_callbacks",
    "same_on_every_worker",
    "check_multi_worker",
    "check_workers_agree",
    "open_worker_run",
]


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The training tasks a ``TF_CONFIG`` names: how many, this task's rank (the chief first) and whether it is the
    chief."""

    workers: int
    rank: int
    chief: bool


def cluster_from_tf_config(text: str | None) -> Cluster | None:
    """The cluster of a ``TF_CONFIG`` value; None when unset or when it names one task (nothing to distribute).

    Example:
        >>> cluster_from_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
        Cluster(workers=2, rank=1, chief=False)
    """
    if not text or not text.strip():
        return None
    fix = (
        'Fix: set TF_CONFIG to e.g. {"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
        '"task": {"type": "worker", "index": 0}} (index: this machine\'s place in the list), or unset it.'
    )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise KitError(f"expected TF_CONFIG to be JSON, got {text[:80]!r} ({e}). {fix}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise KitError(f'expected TF_CONFIG to have a "cluster" of task lists, got {text[:80]!r}. {fix}')
    other = sorted(set(cluster) - {"chief", "worker"})
    if other:
        raise KitError(
            f"expected TF_CONFIG's cluster to list only chief and worker tasks (MultiWorkerMirroredStrategy), "
            f"got {other}. {fix}"
        )
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise KitError(f"expected TF_CONFIG's cluster {kind!r} as a list of host:port, got {addresses!r}. {fix}")
    if len(cluster.get("chief", [])) > 1:
        raise KitError(f"expected at most one chief in TF_CONFIG, got {cluster['chief']}. {fix}")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise KitError(f"expected TF_CONFIG task to name a type in its cluster {sorted(cluster)}, got {task!r}. {fix}")
    kind, index = task["type"], task.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise KitError(
            f"expected TF_CONFIG's task index in 0..{len(cluster[kind]) - 1} ({len(cluster[kind])} {kind} "
            f"tasks), got {index!r}. {fix}"
        )
    chiefs = len(cluster.get("chief", []))
    workers = chiefs + len(cluster.get("worker", []))
    if workers < 2:
        return None
    rank = index if kind == "chief" else chiefs + index
    return Cluster(workers, rank, rank == 0)


def fit_inputs(data, epoch: int, model) -> dict:
    """The data arguments of ``model.fit`` for the batches of ``data`` (a ``kit.train.loader.StoreDataset``) from
    ``epoch`` on: ``{"x": data}`` on one machine. Under a multi-worker strategy, each replica's share of every batch
    (``data.replica_batch``), epoch after epoch, with ``len(data)`` steps per epoch: every worker runs the same
    steps and together they train on each batch once, each reading and augmenting only its share. (Handed the
    ``PyDataset`` itself, TensorFlow would build every batch on every worker and keep a slice of it.) ``model``,
    made in the strategy's scope, is readied for such a dataset (``_build_for_multi_worker``).

    Example:
        >>> model.fit(**fit_inputs(data, 0, model), epochs=10)  # doctest: +SKIP
    """
    if not _STRATEGY:
        return {"x": data}
    import tensorflow as tf

    strategy = _STRATEGY[0]
    sample = data.replica_batch(0, 0, strategy.num_replicas_in_sync)
    spec = tuple(tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype)) for a in sample)

    def dataset_fn(context: tf.distribute.InputContext):
        replicas = context.num_replicas_in_sync
        local = replicas // context.num_input_pipelines  # this worker's replicas take one element each per step
        mine = range(context.input_pipeline_id * local, (context.input_pipeline_id + 1) * local)

        def batches():  # endless: fit's steps_per_epoch cuts the epochs, and the order depends only on the epoch
            for e in itertools.count(epoch):
                data.set_epoch(e)
                for index in range(len(data)):
                    for replica in mine:
                        yield data.replica_batch(index, replica, replicas)

        return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)

    _build_for_multi_worker(model, sample)
    batches = strategy.distribute_datasets_from_function(dataset_fn)
    return {"x": batches, "steps_per_epoch": len(data), "shuffle": False}  # the epoch's order is data's own


def _build_for_multi_worker(model, sample) -> None:
    # Two steps of Keras 3's fit fail under MultiWorkerMirroredStrategy (keras-team/keras#20585). It builds the
    # model from a first batch reduced with strategy.reduce, which fails on an (x, y) tuple: build it (layers, loss,
    # optimizer variables) from one local batch in the scope instead, and skip that step. And it averages each
    # step's logs over the replicas with reduce("MEAN", axis=0), which fails on a scalar such as the loss: hand
    # them over as 1-vectors, so that the average comes back a scalar.
    import tensorflow as tf

    with _STRATEGY[0].scope():
        model._symbolic_build(data_batch=sample)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step = model.train_step

    def train_step_with_vector_logs(data):
        logs = train_step(data)
        return {k: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0 else v for k, v in logs.items()}

    model.train_step = train_step_with_vector_logs


def worker_callbacks() -> list:
    """Callbacks that keep the workers' models identical, to put before any that validates or saves: the float
    statistics each worker updates from its own share of the batches (batch normalisation's moving mean and
    variance) are averaged over the workers at every epoch's end. None on one machine."""
    return [_AverageStatistics()] if _STRATEGY else []


class _AverageStatistics(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        strategy = _STRATEGY[0]
        stats = [v for v in self.model.non_trainable_variables if keras.backend.is_float_dtype(v.dtype)]
        if not stats:
            return
        flat = tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in stats], axis=0)
        local = strategy.experimental_distribute_values_from_function(lambda _: flat)
        mean = strategy.reduce("MEAN", local, axis=None)  # one collective for all of them
        start = 0
        for v in stats:
            size = int(np.prod(v.shape))
            v.assign(tf.cast(tf.reshape(mean[start : start + size], v.shape), v.dtype))
            start += size


def same_on_every_worker(values: list[int]) -> bool:
    """True when every worker of the multi-worker strategy passes the same ``values`` (always, on one machine).

    A collective: every worker must call it at the same point, with as many values.

    Example:
        >>> same_on_every_worker([1, 2])
        True
    """
    if not _STRATEGY:
        return True
    import tensorflow as tf

    strategy = _STRATEGY[0]
    mine = tf.constant([values], tf.int64)
    every = strategy.gather(strategy.experimental_distribute_values_from_function(lambda _: mine), axis=0)
    every = every.numpy()
    return bool((every == every[:1]).all())


_STRATEGY = []  # the one MultiWorkerMirroredStrategy of this process: TensorFlow allows only one


def multi_worker_strategy():
    """This process's one MultiWorkerMirroredStrategy (from ``TF_CONFIG``), created on first use."""
    if not _STRATEGY:
        import tensorflow as tf

        try:
            _STRATEGY.append(tf.distribute.MultiWorkerMirroredStrategy())  # reads TF_CONFIG itself
        except (RuntimeError, ValueError) as e:
            raise KitError(
                f"expected to join the cluster TF_CONFIG names, got {type(e).__name__}: {e}. Fix: start kit train "
                "in a fresh process (the strategy must come before any TensorFlow op) with TF_CONFIG set."
            ) from None
    return _STRATEGY[0]


def check_multi_worker(device, max_minutes) -> None:
    """Refuse what several workers cannot share: a time budget (each machine's clock would stop it elsewhere)."""
    # Every worker must stop at the same step: a budget read from each machine's own clock would not.
    if device.workers > 1 and max_minutes:
        raise KitError(
            f"expected no --max-minutes when {device.workers} workers train together (each would stop by its own "
            "clock, mid-step for the others), got --max-minutes "
            f"{max_minutes}. Fix: drop it and bound the run with --set train.epochs=N."
        )


def check_workers_agree(cfg, run: RunFolder, todo: list[int]) -> None:
    """Every worker plans the same folds from the same epochs with the same configuration, or all stop."""
    # Workers that disagree on what to train would wait for each other's collectives forever: fail on all of them.
    plan = json.dumps([[f, run.fold(f).read_state().epoch] for f in todo])
    if not same_on_every_worker([zlib.crc32(identity(cfg).encode()), zlib.crc32(plan.encode())]):
        raise KitError(
            f"expected every worker to train the same folds from the same epochs with the same configuration, got "
            f"this one planning [fold, from epoch] {plan} of {run.path} unlike another. Fix: run the same kit train "
            "command on every machine; resume only where every worker sees the chief's run folder (the same "
            "--run-dir on a shared filesystem), else start a new run folder."
        )


def open_worker_run(cfg, run_dir, device) -> RunFolder:
    """The run folder: the chief's; another worker of a multi-worker run writes the same files into a scratch folder
    (kept, its path printed). When this machine sees ``run_dir`` with folds trained before (a shared filesystem),
    the scratch folder starts with a copy of its folds so that the worker resumes where the chief does."""
    if device.chief:
        return RunFolder(open_run(cfg, run_dir))
    scratch = RunFolder(Path(tempfile.mkdtemp(prefix=f"kit-worker{device.worker}-")) / "run")
    chief = RunFolder(run_dir) if run_dir is not None else None
    # only a resumed run: a new one's folds.csv may be half written by the chief at this very moment
    if chief is not None and list(chief.path.glob("fold*/state.json")) + list(chief.path.glob("fold*/done.json")):
        shutil.copytree(chief.path, scratch.path, ignore=lambda d, names: [n for n in names if n.endswith(".png")])
    print(f"worker {device.worker} of {device.workers}: the chief writes the run folder, this worker {scratch.path}")
    return RunFolder(open_run(cfg, scratch.path))
