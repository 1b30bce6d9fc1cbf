"""A training loop of the recipe's own, for every ``tf.distribute`` strategy, several machines
(``MultiWorkerMirroredStrategy``) included. Taught in notebook 08, which writes it out.

Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy`` (see
:data:`helpers.distribute.MULTI_WORKER_UNSUPPORTED`); this loop does what ``fit`` does for the
recipe, with ``strategy.run``: the same model, loss, batches and learning-rate schedule, the
validation mean IoU after every epoch, and a checkpoint the chief writes after every epoch, from
which a restarted run resumes. Run one worker of a cluster from a shell::

    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}' \\
        python -m helpers.loop DATASET RUN_DIR --epochs 20

Every worker runs the same command with its own ``task`` index; each prints one line of JSON
when it finishes. ``RUN_DIR`` must be a folder every worker can read (the chief writes there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from helpers import distribute, losses, metrics, models, training
from helpers.data import Dataset
from helpers.layout import Classes

CHECKPOINTS = "checkpoints"  # the chief's checkpoints, in the run folder
HISTORY = "history.json"  # the chief's per-epoch log, in the run folder


@dataclass
class LoopHistory:
    """What a run of :func:`train_loop` measured, one entry per epoch it ran."""

    loss: list[float] = field(default_factory=list)
    val_mean_iou: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    first_epoch: int = 0  # epochs already done when this run started (resumed from a checkpoint)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the checkpoints and logs: always, except on a worker of a
    cluster other than its first (the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def synchronize_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of ``model``, with its weights, whose BatchNorm layers compute their statistics
    over the global batch (``synchronized=True``: an all-reduce per layer) instead of each
    replica's slice. Call it inside the strategy's scope."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def distributed_batches(
    dataset: Dataset, config: training.TrainConfig, strategy: tf.distribute.Strategy
) -> tuple[tf.distribute.DistributedDataset, tf.distribute.DistributedDataset, int]:
    """The recipe's training and validation batches of the global batch size, sharded by data
    between the workers and split between the replicas, and the training steps per epoch. Under
    ``TPUStrategy`` every batch is full (the remainder is dropped: a TPU needs static shapes)."""
    one_step = training.global_config(config, strategy)  # the global batch, the scaled rate
    train_batches, val_batches = training.recipe_batches(dataset, one_step)
    steps = math.ceil(len(dataset.split("train")) / one_step.batch_size)
    if isinstance(strategy, tf.distribute.TPUStrategy):
        size = one_step.batch_size
        train_batches = train_batches.unbatch().batch(size, drop_remainder=True)
        val_batches = val_batches.unbatch().batch(size, drop_remainder=True)
        steps = len(dataset.split("train")) // size
    distributed = [
        strategy.experimental_distribute_dataset(distribute.shard_by_data(batches))
        for batches in (train_batches, val_batches)
    ]
    return *distributed, steps


def build(
    classes: Classes,
    config: training.TrainConfig,
    strategy: tf.distribute.Strategy,
    steps: int,
    synchronized_batchnorm: bool = False,
) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """The recipe's U-Net and Adam with its schedule (the rate scaled to the global batch),
    made in the strategy's scope: every weight a mirrored variable."""
    rate = training.global_config(config, strategy).learning_rate
    schedule = training.ConstantThenLinearDecay(rate, config.epochs * steps, config.decay_fraction)
    with strategy.scope():
        keras.utils.set_random_seed(config.seed)
        model = models.unet(classes.num_classes, config.image_size, config.base_filters)
        if synchronized_batchnorm:
            model = synchronize_batchnorm(model)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_weights)
    return model, optimizer


def make_steps(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    classes: Classes,
    strategy: tf.distribute.Strategy,
) -> tuple[Callable, Callable]:
    """The compiled training step (returns the loss) and validation step (returns the
    confusion matrix) of ``model`` on a distributed batch, each summed over the replicas."""
    loss_fn = losses.CrossEntropyDiceLoss(classes.num_classes, classes.ignore_index)

    def train_step(images, masks):  # on each replica, on its slice of the batch
        with tf.GradientTape() as tape:
            loss = loss_fn(masks, model(images, training=True))  # divided by the replicas
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=True))
        return loss

    def val_step(images, masks):  # on each replica: the confusion matrix of its slice
        predicted = tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)
        pairs = tf.reshape(masks * classes.num_classes + predicted, [-1])
        if classes.ignore_index is not None:  # leave the unlabelled pixels out
            pairs = tf.boolean_mask(pairs, tf.reshape(masks != classes.ignore_index, [-1]))
        counts = tf.math.bincount(pairs, minlength=classes.num_classes**2, dtype=tf.int64)
        return tf.reshape(counts, [classes.num_classes, classes.num_classes])

    @tf.function
    def distributed_train_step(batch):
        return strategy.reduce("SUM", strategy.run(train_step, args=batch), axis=None)

    @tf.function
    def distributed_val_step(batch):
        return strategy.reduce("SUM", strategy.run(val_step, args=batch), axis=None)

    return distributed_train_step, distributed_val_step


def save_dir(run_dir: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this process saves its checkpoints: the chief in ``run_dir / CHECKPOINTS``; every
    other worker (a save may need them all) in a folder of its own, deleted after each save."""
    if is_chief(strategy):
        return Path(run_dir) / CHECKPOINTS
    return Path(run_dir) / f".worker-{strategy.cluster_resolver.task_id}"


def _write_history(path: Path, history: LoopHistory) -> None:
    """The per-epoch log, through a temporary file and a rename (never half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(history.__dict__, indent=1), encoding="utf-8")
    os.replace(partial, path)


def _resumed_history(run_dir: Path, epochs_done: int) -> LoopHistory:
    """The chief's log of the epochs a restored checkpoint holds (it may have one more)."""
    path = run_dir / HISTORY
    history = LoopHistory(**json.loads(path.read_text(encoding="utf-8")))
    for values in (history.loss, history.val_mean_iou, history.seconds):
        del values[epochs_done:]
    history.first_epoch = epochs_done
    return history


def train_loop(
    dataset: Dataset,
    config: training.TrainConfig,
    strategy: tf.distribute.Strategy,
    run_dir: Path,
    *,
    synchronized_batchnorm: bool = False,
) -> tuple[keras.Model, LoopHistory]:
    """Train the recipe's U-Net with its loss and schedule under ``strategy`` for
    ``config.epochs`` epochs (``config.batch_size`` images per replica), resuming from the
    latest checkpoint in ``run_dir`` if there is one. Returns the model and the run's log (the
    chief also writes it to ``run_dir / HISTORY`` after every epoch)."""
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)  # the shuffle and augmentation too
    train_batches, val_batches, steps = distributed_batches(dataset, config, strategy)
    model, optimizer = build(dataset.classes, config, strategy, steps, synchronized_batchnorm)
    train_step, val_step = make_steps(model, optimizer, dataset.classes, strategy)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)
    history = LoopHistory()
    latest = tf.train.latest_checkpoint(run_dir / CHECKPOINTS)
    if latest:  # resume: the weights, the optimizer's state and the epoch count
        checkpoint.restore(latest)
        history = _resumed_history(run_dir, int(epoch.numpy()))
    manager = tf.train.CheckpointManager(checkpoint, save_dir(run_dir, strategy), max_to_keep=2)
    while int(epoch.numpy()) < config.epochs:
        start = time.perf_counter()
        total = sum(float(train_step(batch)) for batch in train_batches)
        confusion = sum(val_step(batch).numpy() for batch in val_batches)
        epoch.assign_add(1)
        history.loss.append(total / steps)
        history.val_mean_iou.append(metrics.mean_iou(confusion))
        history.seconds.append(time.perf_counter() - start)
        if is_chief(strategy):  # the log first: resuming drops the epochs no checkpoint holds
            _write_history(run_dir / HISTORY, history)
        manager.save()  # the data files first, then the index: a crash keeps the last one
        if not is_chief(strategy):
            shutil.rmtree(manager.directory, ignore_errors=True)
    return model, history


def main(argv: list[str] | None = None) -> None:
    """One worker: ``python -m helpers.loop DATASET RUN_DIR [options]`` (see the module)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset name or folder (helpers.data.load_dataset)")
    parser.add_argument("run_dir", type=Path)
    defaults = training.TrainConfig()
    for name in ("epochs", "batch_size", "image_size", "base_filters", "seed"):
        flag = f"--{name.replace('_', '-')}"
        parser.add_argument(flag, type=int, default=getattr(defaults, name))
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--synchronized-batchnorm", action="store_true")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=1,
        help="without TF_CONFIG: split the CPU into this "
        "many logical devices, one replica each (to check a cluster's arithmetic on one machine)",
    )
    args = parser.parse_args(argv)
    if args.cpu_devices > 1 and not os.environ.get("TF_CONFIG"):
        distribute.split_cpu(args.cpu_devices)
    strategy = distribute.choose_strategy()  # first: a cluster must form before any tensor
    from helpers import data, runtime

    runtime.seed_everything(args.seed)
    config = training.TrainConfig(
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        base_filters=args.base_filters,
        seed=args.seed,
    )
    _, history = train_loop(
        data.load_dataset(args.dataset),
        config,
        strategy,
        args.run_dir,
        synchronized_batchnorm=args.synchronized_batchnorm,
    )
    report = {"replicas": distribute.replicas(strategy), "chief": is_chief(strategy)}
    print(json.dumps({**report, **history.__dict__}), flush=True)


if __name__ == "__main__":
    main()
