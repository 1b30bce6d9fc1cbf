"""The shared training recipe: configuration, compile, callbacks, fit, save (notebook 03).

Notebooks 04 and later call :func:`load_or_train`, so each runs on its own (on Colab, say):
it loads the model notebook 03 saved in ``artifacts/``, or trains the same one and says so.

Nothing is lost or mixed up: runs live in ``artifacts/<dataset key>/<model>-<run id>/`` (one
folder per dataset and configuration, :func:`default_run_dir`), trained models in
``artifacts/<dataset key>/<model>-<config id>.keras`` (:func:`model_path`), where the dataset key
is the folder's name under ``data/`` and its name plus a hash of its resolved path elsewhere
(:func:`dataset_key`), so two folders of the same name never share a model; every model file is
written to a temporary file and renamed over the old one, so a crash leaves the old file or the
new one, never a broken one; and no good file is ever deleted.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import errno
import hashlib
import json
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from helpers import (
    ARTIFACTS_DIR,
    DATA_DIR,
    REPO_ROOT,
    distribute,
    losses,
    metrics,
    models,
    pipeline,
    resolution,
    runtime,
)
from helpers.data import Dataset, class_pixel_counts
from helpers.layout import Classes


class NoGPUError(RuntimeError):
    """A GPU was demanded (``REQUIRE_GPU = True``) but the runtime has none."""


class DamagedModelError(ValueError):
    """A ``.keras`` file that is not a complete archive (a crash during its save, say)."""


# The fewest optimizer steps a run on a small training split takes. The thin-vessel set of
# issue 18 (6-17 images) learned only background in 60 epochs of 1-3 steps, and reached vessel
# IoU 0.31 in 600 epochs (600-1,800 steps); the recipe's U-Net passes validation mean IoU 0.8 on
# shapes after about 960 steps (notebook 03, epoch 16). 1,000 steps at 64x64 and batch size 8
# take about 2-3 minutes on two CPU cores.
MIN_STEPS = 1_000


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the defaults are the CPU configuration."""

    image_size: int = 64
    batch_size: int = 8  # on 2 cores, 8 reached a higher mean IoU in the same time than 16
    epochs: int = 60
    learning_rate: float = 3e-3
    # The learning rate stays at its peak, then falls linearly to ~0 over this last share of
    # the epochs (0: constant). The small late steps settle the edges; with a constant rate,
    # validation mean IoU still swung by up to 0.05 between the last epochs.
    decay_fraction: float = 0.4
    base_filters: int = 8
    # 16-bit maths with float32 weights and logits: float16 on a GPU, bfloat16 on a CPU.
    mixed_precision: bool = False
    patience: int = 15
    # Plain cross-entropy barely learns the rare class within a short budget; Dice or class
    # weights lift it (at 15 epochs the two are within seed noise); after 60 epochs all three
    # learn it and CE + Dice scores it best (benchmarks/losses.py, three seeds; notebook 06).
    # Class weights need plain cross-entropy.
    loss: str = "cross_entropy_dice"  # or "cross_entropy", "dice", "focal", ... (notebook 06)
    class_weight_power: float = 0.0  # > 0 (with loss="cross_entropy"): per-pixel class weights
    augment: bool = True  # random flips, brightness and contrast (helpers.pipeline)
    # Random zoom-crops too (0.25: crops of 75-100% of the side). Off by default: at 64x64 the
    # re-resized masks shift edges by a pixel, and within two minutes that costs more than the
    # extra variety gives (measured: about -0.02 best validation mean IoU).
    max_zoom: float = 0.0
    seed: int = 42
    # The fewest optimizer steps a run on a small training split takes (see run_length);
    # 0 trains exactly ``epochs`` passes. Left out of the printed configuration.
    min_steps: int = dataclasses.field(default=MIN_STEPS, repr=False)


# A training split that fills fewer batches than this is *small*: the CPU configuration's 60
# epochs of one pass would come to fewer than MIN_STEPS steps, so a budget counted in passes
# means nothing (60 epochs of 8 images at batch size 8 are 60 steps), and each epoch repeats the
# pairs (run_length). At this threshold one-pass runs have 1,020 steps or more: no cliff between
# a lengthened run and a plain one. shapes fills 60 batches per pass on a CPU: never small.
SMALL_SPLIT_BATCHES = 17
# Fields added after models were saved under their config_id: hashed only when they differ from
# their default, so an older configuration keeps its id (and its saved model's file name).
LATER_FIELDS = ("min_steps",)
# Fields a resumed run may change: how long it goes on and how patiently it waits.
RESUMABLE_CHANGES = ("epochs", "patience")

CPU_CONFIG = TrainConfig()
# On a GPU: larger images and batches, a wider U-Net, and float16 maths on Tensor Cores.
GPU_CONFIG = TrainConfig(image_size=128, batch_size=32, epochs=40, base_filters=16)


def resolve_config(require_gpu: bool = False, **overrides: object) -> TrainConfig:
    """The configuration for this runtime: ``GPU_CONFIG`` on a GPU, ``CPU_CONFIG`` otherwise.

    ``mixed_precision`` is switched on where the GPU supports it (compute capability >= 7.0).
    CPUs stay in float32, also those with AMX bfloat16 tiles: there ``mixed_bfloat16`` trained
    this thin U-Net (8 to 32 filters) no faster (benchmarks/precision.py).
    ``overrides`` (for example ``epochs=5``) win over both. Raises :class:`NoGPUError` when
    ``require_gpu`` is set and there is no GPU.
    """
    gpus = runtime.gpu_details()
    if require_gpu and not gpus:
        raise NoGPUError(
            "REQUIRE_GPU is True but TensorFlow sees no GPU. On Colab choose Runtime -> Change "
            "runtime type -> GPU, then run the notebook again; or set REQUIRE_GPU = False to "
            "train the small CPU configuration."
        )
    config = GPU_CONFIG if gpus else CPU_CONFIG
    if gpus:
        config = dataclasses.replace(config, mixed_precision=runtime.mixed_precision_capable())
    config = dataclasses.replace(config, **overrides)
    check_config(config)
    return config


def _digest(values: object) -> str:
    """8 hex digits of the SHA-256 of ``values`` as sorted JSON: the same on every machine."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


def _fields(config: TrainConfig) -> dict:
    """The configuration's fields, without later fields left at their defaults."""
    values = dataclasses.asdict(config)
    for name in LATER_FIELDS:
        if values[name] == TrainConfig.__dataclass_fields__[name].default:
            del values[name]
    return values


def config_id(config: TrainConfig) -> str:
    """A short name for a configuration, the same on every machine: its image size and epochs,
    then a hash of every field (``"64px-60ep-1a2b3c4d"``), so two configurations never share
    a model file."""
    return f"{config.image_size}px-{config.epochs}ep-{_digest(_fields(config))}"


def run_id(config: TrainConfig) -> str:
    """:func:`config_id` without the fields a resumed run may change (``RESUMABLE_CHANGES``):
    a run resumed with more epochs finds its folder (``"64px-1a2b3c4d"``)."""
    values = {k: v for k, v in _fields(config).items() if k not in RESUMABLE_CHANGES}
    return f"{config.image_size}px-{_digest(values)}"


def dataset_key(dataset: Dataset) -> str:
    """The dataset's folder in ``artifacts/``: its name for a folder directly under ``data/``,
    else its name and a hash of its resolved path (``"mydata-1a2b3c4d"``), so that two
    datasets called ``mydata`` never share a run or a model."""
    root = dataset.root.resolve()
    if root.parent == DATA_DIR.resolve():
        return dataset.name
    return f"{dataset.name}-{_digest(str(root))}"


def default_run_dir(dataset: Dataset, config: TrainConfig, model_name: str = "unet") -> Path:
    """Where :func:`train` keeps a run: ``artifacts/<dataset key>/<model>-<run id>/``."""
    return ARTIFACTS_DIR / dataset_key(dataset) / f"{model_name}-{run_id(config)}"


def model_path(dataset: Dataset, config: TrainConfig, model_name: str = "unet") -> Path:
    """Where the trained model of a dataset and configuration is saved (:func:`save_trained`)
    and loaded (:func:`load_or_train`): ``artifacts/<dataset key>/<model>-<config id>.keras``."""
    return ARTIFACTS_DIR / dataset_key(dataset) / f"{model_name}-{config_id(config)}.keras"


@keras.saving.register_keras_serializable(package="helpers")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``peak`` learning rate, then a straight line down to ``floor`` over the last
    ``decay_fraction`` of ``total_steps``: big steps while the model is far from a solution,
    small ones at the end to settle the detail (edges, small objects)."""

    def __init__(
        self, peak: float, total_steps: int, decay_fraction: float = 0.4, floor: float = 1e-5
    ) -> None:
        self.peak, self.total_steps = peak, total_steps
        self.decay_fraction, self.floor = decay_fraction, floor

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        decay_steps = max(self.total_steps * self.decay_fraction, 1.0)
        progress = keras.ops.clip((step - (self.total_steps - decay_steps)) / decay_steps, 0, 1)
        return self.floor + (self.peak - self.floor) * (1.0 - progress)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "decay_fraction": self.decay_fraction,
            "floor": self.floor,
        }


@dataclass(frozen=True)
class RunLength:
    """How long a run is: ``epochs`` epochs of ``steps_per_epoch`` optimizer steps, each epoch
    ``passes`` passes over the training pairs (more than 1 only on a small training split).
    Early stopping judges the epochs from ``stop_from`` on (0-based; see :func:`run_length`)."""

    epochs: int
    steps_per_epoch: int
    passes: int = 1
    stop_from: int = 0

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def is_small_split(train_size: int, batch_size: int) -> bool:
    """True when the training pairs fill fewer than ``SMALL_SPLIT_BATCHES`` batches."""
    return math.ceil(train_size / batch_size) < SMALL_SPLIT_BATCHES


def run_length(config: TrainConfig, train_size: int) -> RunLength:
    """The run's length in epochs and steps for ``train_size`` training pairs.

    An epoch is one pass over the pairs, except on a small split (:func:`is_small_split`) whose
    ``epochs`` passes come to fewer than ``config.min_steps`` steps: there each epoch repeats the
    pairs (with new random augmentation each time) until the run reaches ``min_steps``. Epochs,
    early-stopping patience and the learning-rate schedule keep their meaning, on longer epochs.

    Early stopping starts judging once the run has taken ``min_steps`` steps and its
    learning-rate decay has begun (``stop_from``): judged earlier, on a handful of validation
    images, it ended short runs before the decay and the announced length.
    """
    steps_per_pass = math.ceil(train_size / config.batch_size)
    passes = 1
    short = config.epochs * steps_per_pass < config.min_steps
    if short and is_small_split(train_size, config.batch_size):
        steps_needed = math.ceil(config.min_steps / config.epochs)
        passes = math.ceil(steps_needed * config.batch_size / train_size)
    steps_per_epoch = math.ceil(passes * train_size / config.batch_size)
    decay_start = math.floor(config.epochs * (1 - config.decay_fraction) + 1e-9)
    stop_from = min(config.epochs, max(math.ceil(config.min_steps / steps_per_epoch), decay_start))
    return RunLength(config.epochs, steps_per_epoch, passes, stop_from)


def learning_rate_for(config: TrainConfig, train_size: int) -> float | ConstantThenLinearDecay:
    """The recipe's learning rate: constant, or :class:`ConstantThenLinearDecay` over the run
    (:func:`run_length`)."""
    if not config.decay_fraction:
        return config.learning_rate
    total_steps = run_length(config, train_size).total_steps
    return ConstantThenLinearDecay(config.learning_rate, total_steps, config.decay_fraction)


def run_length_note(config: TrainConfig, train_size: int) -> str | None:
    """One line on a run that :func:`run_length` lengthened (None when it did not)."""
    length = run_length(config, train_size)
    if length.passes == 1:
        return None
    return (
        f"The training split is small ({_count(train_size, 'pair')}), so {config.epochs} "
        f"epochs of one pass would be {config.epochs * math.ceil(train_size / config.batch_size)}"
        f" optimizer steps: each epoch repeats the pairs {length.passes} times (new random "
        f"augmentation each time), and the run takes {config.epochs} epochs of "
        f"{length.steps_per_epoch} steps = {length.total_steps:,d} steps (at least "
        f"min_steps={config.min_steps:,d}; patience and the learning-rate decay count these "
        "epochs, and early stopping waits for the decay)."
    )


def global_config(config: TrainConfig, strategy: tf.distribute.Strategy) -> TrainConfig:
    """The configuration one optimizer step sees under ``strategy`` (notebook 08): the batch
    is ``config.batch_size`` per replica times the replicas, and the learning rate is scaled
    by ``distribute.LEARNING_RATE_SCALING``. ``config`` itself on one replica."""
    if distribute.replicas(strategy) == 1:
        return config
    return dataclasses.replace(
        config,
        batch_size=distribute.global_batch_size(config.batch_size, strategy),
        learning_rate=distribute.scaled_learning_rate(config.learning_rate, strategy),
    )


def check_config(config: TrainConfig) -> None:
    """Refuse a configuration the recipe cannot train (before any data is read), naming every
    problem and what is allowed."""
    rules = [
        (config.batch_size < 1, f"batch_size must be at least 1, not {config.batch_size}"),
        (config.epochs < 1, f"epochs must be at least 1, not {config.epochs}"),
        (config.min_steps < 0, f"min_steps must be 0 or more, not {config.min_steps}"),
        (
            not config.learning_rate > 0,
            f"learning_rate must be greater than 0, not {config.learning_rate}",
        ),
        (
            not 0 <= config.decay_fraction < 1,
            f"decay_fraction must be in [0, 1) (0: constant rate), not {config.decay_fraction}",
        ),
        (
            config.loss != "cross_entropy" and bool(config.class_weight_power),
            "per-pixel class weights apply to plain cross-entropy only (loss='cross_entropy'): "
            "set class_weight_power=0 with another loss",
        ),
    ]
    problems = [message for failed, message in rules if failed]
    problems += filter(None, [models.image_size_problem(config.image_size)])
    if problems:
        raise ValueError("Invalid training configuration: " + "; ".join(problems) + ".")


def set_precision(config: TrainConfig) -> str:
    """Set Keras' global dtype policy from the configuration and return its name."""
    policy = runtime.mixed_precision_policy() if config.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def compile_for_segmentation(
    model: keras.Model,
    num_classes: int,
    ignore_index: int | None,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None,
    loss: str = "cross_entropy",
    optimizer: keras.optimizers.Optimizer | None = None,
    **options: object,
) -> keras.Model:
    """Adam, per-pixel cross-entropy on logits (plus Dice with ``loss="cross_entropy_dice"``)
    and mean IoU, all skipping ``ignore_index``.

    Notebook 06 compares more losses: ``"dice"`` (Dice alone), ``"focal"`` (focal loss,
    gamma 2) and ``"boundary_cross_entropy"`` (cross-entropy weighted up near class edges).
    Notebook 05 passes its own ``optimizer`` (then ``learning_rate`` is unused) and ``options``
    for ``model.compile`` (``jit_compile``, ``steps_per_execution``).
    """
    losses_by_name = {
        "cross_entropy": lambda: keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=ignore_index
        ),
        "cross_entropy_dice": lambda: losses.CrossEntropyDiceLoss(num_classes, ignore_index),
        "dice": lambda: losses.DiceLoss(num_classes, ignore_index),
        "focal": lambda: losses.FocalLoss(gamma=2.0, ignore_index=ignore_index),
        "boundary_cross_entropy": lambda: losses.BoundaryWeightedCrossEntropy(ignore_index),
    }
    if loss not in losses_by_name:
        raise ValueError(f"loss must be one of {sorted(losses_by_name)}, not {loss!r}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate) if optimizer is None else optimizer,
        loss=losses_by_name[loss](),
        metrics=[
            keras.metrics.MeanIoU(
                num_classes=num_classes,
                sparse_y_pred=False,  # predictions are logits: the metric takes the argmax
                ignore_class=ignore_index,
                name="mean_iou",
            )
        ],
        **options,
    )
    build_optimizer(model)
    return model


def build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's slot variables (Adam's moments) now, not inside ``fit``.

    Keras builds them lazily, during the first trace of the training step when the model was
    built outside a ``tf.distribute`` scope. A ``tf.function`` that creates variables is traced
    twice, so the first ``fit`` then spends twice the tracing time (about 6 s more for the
    course's U-Net on 2 CPU cores; ``benchmarks/first_step.py``). The weights trained are the
    same to the bit. Taught in notebook 03.
    """
    if model.built and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def predict_masks(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Class-id masks (uint8, ``(B, H, W)``) for a batch of images: the argmax of the logits.

    No softmax is needed: it never changes which class scores highest (notebook 02).
    """
    logits = keras.ops.convert_to_numpy(model(images, training=False))
    return np.argmax(logits, axis=-1).astype(np.uint8)


def confusion_on(model: keras.Model, batches: Iterable, classes: Classes) -> np.ndarray:
    """The confusion matrix of ``model`` over a pipeline of ``(images, masks)`` batches."""
    predicted = ((masks, predict_masks(model, images)) for images, masks, *_ in batches)
    return metrics.confusion_matrix_from_batches(
        predicted, classes.num_classes, classes.ignore_index
    )


class PredictionSnapshots(keras.callbacks.Callback):
    """Records the model's predicted mask for one fixed image before training and after epochs.

    The TF tutorial's ``DisplayCallback`` plots every epoch; storing the masks and drawing them
    once at the end (``helpers.viz.show_snapshots``) keeps a notebook short.
    """

    def __init__(self, image: np.ndarray, every: int = 1) -> None:
        super().__init__()
        self.image = np.asarray(image)[None]
        self.every = every
        self.masks: dict[int, np.ndarray] = {}

    def snapshot(self, epoch: int) -> None:
        self.masks[epoch] = predict_masks(self.model, self.image)[0]

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.masks:
            self.snapshot(0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            self.snapshot(epoch + 1)


class TimeToTarget(keras.callbacks.Callback):
    """Records training seconds (excluding validation) until ``val_<monitor>`` reaches a target."""

    def __init__(self, target: float, monitor: str = "val_mean_iou") -> None:
        super().__init__()
        self.target, self.monitor = target, monitor
        self.train_seconds = 0.0
        self.seconds_to_target: float | None = None
        self.epoch_to_target: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.train_seconds += time.perf_counter() - self._start

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if self.seconds_to_target is None and value is not None and value >= self.target:
            self.seconds_to_target, self.epoch_to_target = self.train_seconds, epoch + 1


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temporary file beside ``path``, then rename it over ``path``: a crash
    leaves the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(partial)
        with partial.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as error:
        if error.errno not in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
            raise
        kept = "the previous file is kept" if path.exists() else "nothing was written"
        raise OSError(
            error.errno,
            f"Could not write {_shown(path)}: {error.strerror} (the disk is full, or a file-size "
            f"limit applies: see `ulimit -f`); {kept}. Fix: free space or raise the limit, then "
            "run again (train(..., resume=True) goes on from the last checkpoint).",
        ) from error
    finally:
        partial.unlink(missing_ok=True)


def save_atomically(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary file and a rename (see above)."""
    _replace_atomically(Path(path), model.save)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model (weights, optimizer state) to ``path`` after every epoch, atomically:
    unlike ``ModelCheckpoint``, which rewrites the file in place, a kill during the save
    leaves the previous checkpoint intact."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_atomically(self.model, self.path)


def default_callbacks(
    run_dir: Path, patience: int, stop_from: int = 0
) -> list[keras.callbacks.Callback]:
    """Checkpoint (``.keras``), early stopping on validation mean IoU (judged from epoch
    ``stop_from``, :func:`run_length`), CSV and TensorBoard logs.

    The checkpoint comes before the CSV log, so the log never counts an epoch that the
    checkpoint does not hold (resuming reads the epoch count from the log)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return [
        AtomicCheckpoint(run_dir / "checkpoint.keras"),
        keras.callbacks.EarlyStopping(
            monitor="val_mean_iou",
            mode="max",
            patience=patience,
            restore_best_weights=True,
            start_from_epoch=stop_from,
        ),
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=True),
        keras.callbacks.TensorBoard(run_dir / "logs", write_graph=False),
    ]


def completed_epochs(run_dir: Path) -> int:
    """How many epochs the CSV log of ``run_dir`` records (0 when there is none)."""
    log = run_dir / "history.csv"
    if not log.is_file():
        return 0
    with log.open(newline="") as file:
        return sum(1 for _ in csv.DictReader(file))


def recipe_batches(
    dataset: Dataset, config: TrainConfig, train_pairs: list | None = None, passes: int = 1
) -> tuple:
    """The recipe's training batches (augmented, shuffled, class-weighted if configured;
    ``passes`` passes over the pairs per epoch) and validation batches. ``train_pairs``
    defaults to the dataset's train split."""
    train_pairs = dataset.split("train") if train_pairs is None else train_pairs
    weights = None
    if config.class_weight_power:
        counts = class_pixel_counts(train_pairs, dataset.classes.num_classes)
        weights = losses.class_weights_from_counts(counts, config.class_weight_power)
    train_batches = pipeline.make_pipeline(
        train_pairs,
        config.image_size,
        config.batch_size,
        augment=config.augment,
        max_zoom=config.max_zoom,
        shuffle=True,
        seed=config.seed,
        class_weights=weights,
        num_classes=dataset.classes.num_classes,
        repeat=passes,
    )
    val_batches = pipeline.make_pipeline(dataset.split("val"), config.image_size, config.batch_size)
    return train_batches, val_batches


RUN_FILES = ("checkpoint.keras", "history.csv", "run.json", "logs")


def _count(number: int, noun: str) -> str:
    """``"1 epoch"``, ``"3 epochs"``."""
    return f"{number} {noun}{'s' * (number != 1)}"


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, for messages."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def set_aside_earlier_run(run_dir: Path) -> Path | None:
    """Move the files of an earlier run in ``run_dir`` (checkpoint, logs, configuration) into
    ``run_dir/earlier/<date-time>-<random>/`` and return that folder (None if there were none).
    Nothing is deleted: remove old runs by hand when you no longer need them."""
    found = [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]
    if not found:
        return None
    (run_dir / "earlier").mkdir(exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f"{_timestamp()}-", dir=run_dir / "earlier"))
    for path in found:
        os.replace(path, aside / path.name)
    return aside


def start_run(run_dir: Path, config: TrainConfig) -> None:
    """Set an earlier run aside and record this run's configuration (``run.json``)."""
    set_aside_earlier_run(run_dir)
    record = json.dumps(dataclasses.asdict(config), indent=1)
    _replace_atomically(run_dir / "run.json", lambda path: path.write_text(record))


def load_model_file(path: Path) -> keras.Model:
    """``keras.models.load_model(path, safe_mode=True)``, but a file that is not a complete
    ``.keras`` archive raises :class:`DamagedModelError` naming it (Keras says "File not
    found")."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, EOFError) as error:
        bad_member = f"not a complete .keras archive: {error}"
    if not bad_member:
        try:
            return keras.models.load_model(path, safe_mode=True)
        except (ValueError, TypeError, KeyError, OSError) as error:  # a broken config or weights
            bad_member = f"Keras cannot load it: {type(error).__name__}: {str(error)[:200]}"
    raise DamagedModelError(
        f"The model file {_shown(path)} is damaged ({bad_member}; "
        f"{path.stat().st_size:,d} bytes), probably by a crash during its save."
    )


def _shape_mismatches(model: keras.Model, image_size: int, num_classes: int) -> list[str]:
    """How a saved model's input size and classes differ from those asked for (empty: none)."""
    problems = []
    size = model.input_shape[1]
    if size is not None and size != image_size:
        problems.append(f"it was trained on {size}x{size} images, not {image_size}")
    if model.output_shape[-1] != num_classes:
        problems.append(f"it has {model.output_shape[-1]} classes, not {num_classes}")
    return problems


def _resume_mismatches(
    saved: keras.Model, run_dir: Path, config: TrainConfig, classes: Classes, given: keras.Model
) -> list[str]:
    """What differs between a checkpoint and what the caller asked for (empty: none)."""
    problems = _shape_mismatches(saved, config.image_size, classes.num_classes)
    kept, asked = (saved.name, saved.count_params()), given and (given.name, given.count_params())
    if asked and asked != kept:
        problems.append(
            f"it holds a {kept[0]} of {kept[1]:,d} weights, but the given model is a {asked[0]} "
            f"of {asked[1]:,d} (pass model=None to continue the checkpoint's model)"
        )
    record = run_dir / "run.json"
    earlier = json.loads(record.read_text()) if record.is_file() else {}
    for field, value in dataclasses.asdict(config).items():
        skipped = field in RESUMABLE_CHANGES or field == "image_size"  # checked on the model
        if field in earlier and not skipped and earlier[field] != value:
            problems.append(f"it was trained with {field}={earlier[field]!r}, not {value!r}")
    return problems


def _resumed_model(
    checkpoint: Path, config: TrainConfig, classes: Classes, given: keras.Model | None
) -> keras.Model:
    """The checkpoint's model, if it is the run that was asked for; a clear error if not."""
    fix = "Resume with the run's settings, or train afresh (resume=False; the run is kept)."
    try:
        saved = load_model_file(checkpoint)
    except DamagedModelError as error:
        raise DamagedModelError(f"{error} {fix}") from None
    problems = _resume_mismatches(saved, checkpoint.parent, config, classes, given)
    if problems:
        raise ValueError(f"Cannot resume from {_shown(checkpoint)}: {'; '.join(problems)}. {fix}")
    return saved


def train(
    dataset: Dataset,
    config: TrainConfig,
    *,
    model: keras.Model | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = 2,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train a segmentation model (by default a U-Net) with the shared recipe.

    Taught in notebook 03, which writes these steps out (seed, pipeline, schedule, compile,
    callbacks, fit); a test checks that both train the same weights.

    ``run_dir`` (default :func:`default_run_dir`: ``artifacts/<dataset>/<model name>-<config
    id>/``) receives the checkpoint (saved atomically every epoch), ``history.csv``, the
    TensorBoard logs and ``run.json`` (the configuration). With ``resume=True`` and a
    checkpoint there, training continues from it (weights, optimizer state, epoch count); it is
    refused, before any data is read, if the checkpoint's image size, classes, model or
    configuration (other than ``epochs`` and ``patience``) differ from what was asked. A fresh
    run in a folder that holds an earlier run moves that run's files to
    ``run_dir/earlier/<date-time>-<random>/`` once the data is ready, just before the first
    epoch: an earlier checkpoint is never deleted. A small training split is trained for at
    least ``config.min_steps`` steps (:func:`run_length`, one printed line); a class that the
    training size erases is named before training, with a size that keeps it
    (:func:`helpers.resolution.report`); a trivial result is named with its likely fixes
    (:func:`trivial_model_warning`). Returns the model and its history.

    ``strategy`` (default :func:`helpers.distribute.choose_strategy`; notebook 08): the model
    is built, loaded and compiled in its scope; ``config.batch_size`` is per replica
    (:func:`global_config`, printed when there are several replicas). A given ``model`` must
    have been built in the strategy's scope. ``MultiWorkerMirroredStrategy`` is refused before
    anything is read (:func:`helpers.distribute.check_supported`).
    """
    check_config(config)
    runtime.seed_everything(config.seed)
    set_precision(config)
    strategy = strategy or distribute.choose_strategy()
    distribute.check_supported(strategy)
    classes = dataset.classes
    given = model
    if model is not None and model.distribute_strategy is not strategy:
        raise ValueError(
            f"The given model {model.name!r} was built outside the scope of the strategy it "
            f"should train under ({distribute.describe(strategy)}). Build it inside "
            "`with strategy.scope():` and pass the same strategy, or pass model=None."
        )
    if model is None:
        with strategy.scope():
            model = models.unet(
                classes.num_classes, image_size=config.image_size, base_filters=config.base_filters
            )
    run_dir = Path(run_dir or default_run_dir(dataset, config, model.name))
    checkpoint = run_dir / "checkpoint.keras"
    resuming = resume and checkpoint.is_file()
    if resume and not resuming:
        print(f"Nothing to resume in {_shown(run_dir)}: starting a fresh run.")
    step_config = global_config(config, strategy)
    if step_config is not config:
        print(
            f"{distribute.describe(strategy)}: global batch {step_config.batch_size} = "
            f"{config.batch_size} per replica x {distribute.replicas(strategy)}, learning rate "
            f"{step_config.learning_rate:g} ({distribute.LEARNING_RATE_SCALING} scaling)."
        )
    if resuming:
        with strategy.scope():
            model = _resumed_model(checkpoint, config, classes, given)
    train_pairs = dataset.split("train")  # verifies every pair (cached per dataset state)
    for warning in resolution.report(train_pairs, classes, config.image_size).warnings():
        print(warning)  # a class that the training size erases, and a size that keeps it
    initial_epoch = completed_epochs(run_dir) if resuming else 0
    if resuming:
        print(f"Resuming from {checkpoint.name} after epoch {initial_epoch}.")
    else:
        learning_rate = learning_rate_for(step_config, len(train_pairs))
        with strategy.scope():
            compile_for_segmentation(
                model, classes.num_classes, classes.ignore_index, learning_rate, config.loss
            )
    length = run_length(step_config, len(train_pairs))
    if note := run_length_note(step_config, len(train_pairs)):
        print(note)
    batches = recipe_batches(dataset, step_config, train_pairs, length.passes)
    if not distribute.is_default(strategy):
        batches = tuple(map(distribute.shard_by_data, batches))
    train_batches, val_batches = batches
    if not resuming:
        start_run(run_dir, config)
    recipe_callbacks = default_callbacks(run_dir, config.patience, length.stop_from)
    history = model.fit(
        train_batches,
        validation_data=val_batches,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset itself
        callbacks=recipe_callbacks + list(callbacks or []),
        verbose=verbose,
    )
    if note := early_stopping_note(recipe_callbacks, config.epochs):
        print(note)
    confusion = confusion_on(model, val_batches, classes)
    small = is_small_split(len(train_pairs), step_config.batch_size)
    kept = _kept_epoch(recipe_callbacks, len(history.history.get("loss", [])) + initial_epoch)
    if warning := trivial_model_warning(confusion, classes, config, small, kept):
        print(warning)
    return model, history.history


def early_stopping_note(callbacks: list[keras.callbacks.Callback], epochs: int) -> str | None:
    """One line when early stopping ended the run before ``epochs`` (None when it did not)."""
    for callback in callbacks:
        stopper = isinstance(callback, keras.callbacks.EarlyStopping)
        if stopper and 0 < callback.stopped_epoch < epochs - 1:
            return (
                f"Early stopping ended the run after epoch {callback.stopped_epoch + 1} of "
                f"{epochs}: validation mean IoU had not improved for "
                f"{_count(callback.patience, 'epoch')}; "
                f"the weights of epoch {callback.best_epoch + 1} ({float(callback.best):.3f}) "
                f"are kept. It judged from epoch {callback.start_from_epoch + 1} on; "
                f"patience={2 * callback.patience} waits longer."
            )
    return None


# A labelled class predicted on fewer pixels than this share of its labelled pixels is "missed".
MISSED_SHARE = 0.01


def missed_classes(confusion: np.ndarray) -> list[int]:
    """Classes present in the labels (rows of ``confusion``) that the model (almost) never
    predicts: on fewer than ``MISSED_SHARE`` as many pixels as their labels cover."""
    labelled, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    return [c for c in range(len(labelled)) if predicted[c] < MISSED_SHARE * labelled[c]]


def _kept_epoch(callbacks: list[keras.callbacks.Callback], last_epoch: int) -> tuple | None:
    """(epoch, validation mean IoU) of the weights early stopping restored, if not the last."""
    for callback in callbacks:
        stopper = isinstance(callback, keras.callbacks.EarlyStopping)
        if stopper and callback.best_weights is not None and callback.best_epoch + 1 < last_epoch:
            return callback.best_epoch + 1, float(callback.best)
    return None


def trivial_model_fixes(config: TrainConfig) -> list[str]:
    """The changes to ``config`` that the trivial-model warning offers: each one differs from
    what ``config`` already does."""
    fixes = [
        f"more optimizer steps (epochs={2 * config.epochs} or "
        f"min_steps={max(2 * config.min_steps, 2_000):,d})",
        f"structures too thin to survive {config.image_size}x{config.image_size} (a larger "
        f"image_size, e.g. {2 * config.image_size}; helpers.resolution.report names one)",
    ]
    if config.loss != "cross_entropy_dice":
        weights = ", class_weight_power=0" if config.class_weight_power else ""
        fixes.append(f"a rare class (loss='cross_entropy_dice'{weights}, the recipe's loss)")
    elif not config.class_weight_power:
        fixes.append("a rare class (loss='cross_entropy' with class_weight_power=0.5, notebook 06)")
    return fixes


def trivial_model_warning(
    confusion: np.ndarray,
    classes: Classes,
    config: TrainConfig,
    small_split: bool = False,
    kept_epoch: tuple[int, float] | None = None,
) -> str | None:
    """A plain warning when a trained model is trivial: it predicts (almost) only one class
    though the validation masks hold others; on a small training split, also when any labelled
    class is (almost) never predicted. None when neither holds. The fixes it offers change
    ``config`` (:func:`trivial_model_fixes`).

    ``kept_epoch`` (epoch, validation mean IoU) says early stopping kept an earlier epoch's
    weights; the warning then says that those weights are this solution.
    """
    missed = missed_classes(confusion)
    labelled = int(np.count_nonzero(confusion.sum(axis=1)))
    trivial = bool(missed) and len(missed) >= labelled - 1
    if not (trivial or (missed and small_split)):
        return None
    predicted = confusion.sum(axis=0)
    names = ", ".join(classes.names[c] for c in missed)
    if trivial:
        top = int(np.argmax(predicted))
        share = predicted[top] / max(predicted.sum(), 1)
        majority = int(np.argmax(confusion.sum(axis=1))) == top
        what = (
            f"the trained model predicts {classes.names[top]!r} on {share:.1%} of the validation "
            f"pixels and (almost) never {names}, though the validation masks hold them: it has "
            f"learned {'the majority class' if majority else 'one class everywhere'}, not the task."
        )
    else:
        what = f"the trained model (almost) never predicts {names}, though the validation masks "
        what += "hold them."
    lines = [f"Warning: {what}"]
    if kept_epoch:
        epoch, score = kept_epoch
        lines.append(
            f"Early stopping kept the weights of epoch {epoch} (the best validation mean IoU, "
            f"{score:.3f}), and those weights are this solution."
        )
    lines.append(
        f"Likely causes and fixes: {'; '.join(trivial_model_fixes(config))}; masks whose values "
        "are not the class ids you expect (check them with helpers.data.class_pixel_counts)."
    )
    return "\n".join(lines)


def _sidecar(path: Path) -> Path:
    """The JSON file that says how the model saved at ``path`` was trained."""
    return path.with_suffix(".json")


def save_trained(
    model: keras.Model,
    path: Path,
    config: TrainConfig,
    history: dict[str, list[float]],
    dataset: Dataset | None = None,
) -> None:
    """Save a trained model atomically to ``path`` (usually :func:`model_path`), with a JSON
    sidecar (same name, ``.json``): the configuration, the dataset's folder and class names
    (when ``dataset`` is given), the epochs ``history`` records, its best validation mean IoU
    and the date."""
    path = Path(path)
    scores = history.get("val_mean_iou", [])
    record = {
        "config": dataclasses.asdict(config),
        "dataset": dataset and str(dataset.root.resolve()),
        "classes": dataset and list(dataset.classes.names),
        "config_id": config_id(config),
        "epochs_run": len(history.get("loss", [])),
        "best_val_mean_iou": max(scores) if scores else None,
        "saved": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    save_atomically(model, path)
    text = json.dumps(record, indent=1)
    _replace_atomically(_sidecar(path), lambda partial: partial.write_text(text))


def how_trained(path: Path) -> str:
    """How the model at ``path`` was trained, from its sidecar (:func:`save_trained`)."""
    try:
        record = json.loads(_sidecar(path).read_text())
        epochs, best = record["epochs_run"], record["best_val_mean_iou"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no record of how it was trained"
    score = "no validation score" if best is None else f"best validation mean IoU {best:.3f}"
    return f"trained {_count(epochs, 'epoch')}, {score}"


def _set_aside(path: Path, why: str) -> Path:
    """Rename a model file to ``<name>.<why>-<date-time>`` (never delete it), its sidecar
    too."""
    suffix = f".{why}-{_timestamp()}"
    aside = path.with_name(path.name + suffix)
    if _sidecar(path).is_file():
        os.replace(_sidecar(path), aside.with_name(_sidecar(path).name + suffix))
    os.replace(path, aside)
    return aside


def _load_mismatches(
    model: keras.Model, path: Path, dataset: Dataset, config: TrainConfig
) -> list[str]:
    """Why the model saved at ``path`` is not this dataset's and configuration's (empty: it
    is)."""
    classes = dataset.classes
    problems = _shape_mismatches(model, config.image_size, classes.num_classes)
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        record = {}
    names = record.get("classes") if isinstance(record, dict) else None
    if names and names != list(classes.names) and len(names) == classes.num_classes:
        problems.append(f"its classes are {names}, not {list(classes.names)}")
    return problems


def load_or_train(
    dataset: Dataset, config: TrainConfig | None = None, path: Path | None = None
) -> keras.Model:
    """The trained U-Net of this dataset and configuration (default path :func:`model_path`,
    as notebook 03 saved it), or train one now and save it with :func:`save_trained`.

    Prints one line: which model it loaded and how it was trained, or that it trains one (a
    damaged file is renamed aside, never deleted, and a new model trained), then what
    :func:`train` says of a small split or a trivial model.
    """
    config = config or resolve_config()
    path = Path(path or model_path(dataset, config))
    if path.exists() and not path.is_file():
        raise ValueError(
            f"{_shown(path)} is a folder, not a model file: nothing was trained. Fix: move or "
            "rename the folder, or pass another path=..."
        )
    size = config.image_size
    recipe = f"the shared recipe ({_count(config.epochs, 'epoch')} at {size}x{size})"
    if not path.is_file():
        print(f"No trained model at {_shown(path)}: training one now with {recipe}.")
    else:
        try:
            model = load_model_file(path)
            problems = _load_mismatches(model, path, dataset, config)
            if not problems:
                print(f"Loaded the trained model from {_shown(path)} ({how_trained(path)}).")
                return model
            aside = _set_aside(path, "other")
            print(
                f"The model at {_shown(path)} is not this dataset's: {'; '.join(problems)}. "
                f"Kept it as {aside.name}; training a new one now with {recipe}."
            )
        except DamagedModelError as error:
            aside = _set_aside(path, "damaged")
            print(f"{error} Kept it as {aside.name}; training a new one now with {recipe}.")
    model, history = train(dataset, config, verbose=0)
    save_trained(model, path, config, history, dataset)
    return model
