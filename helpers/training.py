"""The shared training recipe: configuration, compile, callbacks, fit, save (notebook 03).

Notebooks 04 and later call :func:`load_or_train`, so each runs on its own (on Colab, say):
it loads the model notebook 03 saved in ``artifacts/``, or trains the same one and says so.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from helpers import ARTIFACTS_DIR, losses, metrics, models, pipeline, runtime
from helpers.data import Classes, Dataset, class_pixel_counts


class NoGPUError(RuntimeError):
    """A GPU was demanded (``REQUIRE_GPU = True``) but the runtime has none."""


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
    mixed_precision: bool = False
    patience: int = 15
    # Cross-entropy + Dice learns the rare class sooner than plain (or class-weighted)
    # cross-entropy; see notebook 06. Class weights (helpers.losses) need plain cross-entropy.
    loss: str = "cross_entropy_dice"  # or "cross_entropy", "dice", "focal", ... (notebook 06)
    class_weight_power: float = 0.0  # > 0 (with loss="cross_entropy"): per-pixel class weights
    augment: bool = True  # random flips, brightness and contrast (helpers.pipeline)
    # Random zoom-crops too (0.25: crops of 75-100% of the side). Off by default: at 64x64 the
    # re-resized masks shift edges by a pixel, and within two minutes that costs more than the
    # extra variety gives (measured: about -0.02 best validation mean IoU).
    max_zoom: float = 0.0
    seed: int = 42


CPU_CONFIG = TrainConfig()
# On a GPU: larger images and batches, a wider U-Net, and float16 maths on Tensor Cores.
GPU_CONFIG = TrainConfig(image_size=128, batch_size=32, epochs=40, base_filters=16)


def resolve_config(require_gpu: bool = False, **overrides: object) -> TrainConfig:
    """The configuration for this runtime: ``GPU_CONFIG`` on a GPU, ``CPU_CONFIG`` otherwise.

    ``mixed_precision`` is switched on where the GPU supports it (compute capability >= 7.0).
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
    return dataclasses.replace(config, **overrides)


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


def learning_rate_for(config: TrainConfig, train_size: int) -> float | ConstantThenLinearDecay:
    """The recipe's learning rate: constant, or :class:`ConstantThenLinearDecay` over the run."""
    if not config.decay_fraction:
        return config.learning_rate
    total_steps = config.epochs * math.ceil(train_size / config.batch_size)
    return ConstantThenLinearDecay(config.learning_rate, total_steps, config.decay_fraction)


def check_config(config: TrainConfig) -> None:
    """Refuse a configuration the recipe cannot train (before any data is read)."""
    if config.loss != "cross_entropy" and config.class_weight_power:
        raise ValueError(
            "Per-pixel class weights apply to plain cross-entropy only (loss='cross_entropy'): "
            "set class_weight_power=0 with another loss."
        )


def set_precision(config: TrainConfig) -> str:
    """Set Keras' global dtype policy from the configuration and return its name."""
    policy = "mixed_float16" if config.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def compile_for_segmentation(
    model: keras.Model,
    num_classes: int,
    ignore_index: int | None,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    loss: str = "cross_entropy",
) -> keras.Model:
    """Adam, per-pixel cross-entropy on logits (plus Dice with ``loss="cross_entropy_dice"``)
    and mean IoU, all skipping ``ignore_index``.

    Notebook 06 compares more losses: ``"dice"`` (Dice alone), ``"focal"`` (focal loss,
    gamma 2) and ``"boundary_cross_entropy"`` (cross-entropy weighted up near class edges).
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
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=losses_by_name[loss](),
        metrics=[
            keras.metrics.MeanIoU(
                num_classes=num_classes,
                sparse_y_pred=False,  # predictions are logits: the metric takes the argmax
                ignore_class=ignore_index,
                name="mean_iou",
            )
        ],
    )
    return model


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


def default_callbacks(run_dir: Path, patience: int) -> list[keras.callbacks.Callback]:
    """Checkpoint (``.keras``), early stopping on validation mean IoU, CSV and TensorBoard logs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.ModelCheckpoint(run_dir / "checkpoint.keras"),
        keras.callbacks.EarlyStopping(
            monitor="val_mean_iou", mode="max", patience=patience, restore_best_weights=True
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


def recipe_batches(dataset: Dataset, config: TrainConfig, train_pairs: list | None = None) -> tuple:
    """The recipe's training batches (augmented, shuffled, class-weighted if configured) and
    validation batches. ``train_pairs`` defaults to the dataset's train split."""
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
    )
    val_batches = pipeline.make_pipeline(dataset.split("val"), config.image_size, config.batch_size)
    return train_batches, val_batches


def train(
    dataset: Dataset,
    config: TrainConfig,
    *,
    model: keras.Model | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = 2,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train a segmentation model (by default a U-Net) with the shared recipe.

    ``run_dir`` (default ``artifacts/<model name>``) receives the checkpoint and logs. With
    ``resume=True`` and a checkpoint there, training continues from it (weights, optimizer
    state, epoch count) instead of starting over. Returns the model and its history.
    """
    check_config(config)
    runtime.seed_everything(config.seed)
    set_precision(config)
    classes = dataset.classes
    if model is None:
        model = models.unet(
            classes.num_classes, image_size=config.image_size, base_filters=config.base_filters
        )
    run_dir = run_dir or ARTIFACTS_DIR / model.name
    checkpoint = run_dir / "checkpoint.keras"
    train_pairs = dataset.split("train")  # checks every file's header: once per run
    initial_epoch = 0
    if resume and checkpoint.is_file():
        model = keras.models.load_model(checkpoint)
        initial_epoch = completed_epochs(run_dir)
        print(f"Resuming from {checkpoint.name} after epoch {initial_epoch}.")
    else:
        if run_dir.exists():  # a fresh run starts fresh logs
            for stale in ("history.csv", "checkpoint.keras"):
                (run_dir / stale).unlink(missing_ok=True)
        learning_rate = learning_rate_for(config, len(train_pairs))
        compile_for_segmentation(
            model, classes.num_classes, classes.ignore_index, learning_rate, config.loss
        )
    train_batches, val_batches = recipe_batches(dataset, config, train_pairs)
    history = model.fit(
        train_batches,
        validation_data=val_batches,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset itself
        callbacks=default_callbacks(run_dir, config.patience) + list(callbacks or []),
        verbose=verbose,
    )
    return model, history.history


def load_or_train(
    dataset: Dataset, config: TrainConfig | None = None, path: Path | None = None
) -> keras.Model:
    """The trained U-Net from ``artifacts/`` (as notebook 03 saved it), or train one and save it.

    Prints which of the two happened, so a reader knows where the model came from.
    """
    path = path or ARTIFACTS_DIR / f"unet_{dataset.name}.keras"
    if path.is_file():
        print(f"Loaded the trained model from {path.relative_to(path.parents[1])}.")
        return keras.models.load_model(path, safe_mode=True)
    config = config or resolve_config()
    print(f"No trained model at {path.name}: training one with the shared recipe ({config}).")
    model, _ = train(dataset, config, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    print(f"Saved it to {path.relative_to(path.parents[1])}.")
    return model
