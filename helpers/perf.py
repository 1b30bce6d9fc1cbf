"""Measure before you fix: timers, a variant harness, FLOP counts, peaks, traces (notebook 05).

The method of notebook 05 is to time the input pipeline alone, the model step alone and both
together, in one process, and to compare variants by the *ratio* of their throughputs, which
transfers between machines far better than the raw numbers do. :func:`compare` runs named
variants with warm-up and repeats (round-robin, so a background load that comes and goes hits
every variant alike) and reports the median. The ``benchmarks/`` scripts print the same tables.

Also here: the naive pipeline a reader might write first (a Python generator that opens one PNG
at a time with PIL), a FLOP estimate of one training step counted from the model's layers, a
measured matmul peak, a profiler trace summarised as "top ops by time" without TensorBoard, and
short training runs that record the time to a target validation mean IoU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from PIL import Image

from helpers import metrics, models, pipeline, runtime, training
from helpers.data import Dataset
from helpers.layout import Classes, Pair

Clock = Callable[[], float]

# ----------------------------------------------------------------------------------------------
# Timers and the harness
# ----------------------------------------------------------------------------------------------


class Stopwatch:
    """A context manager that measures the seconds its block takes: ``with Stopwatch() as s:``."""

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self.clock = clock
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = self.clock()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = self.clock() - self._start


@dataclass(frozen=True)
class Measurement:
    """The timed repeats of one variant (warm-up runs excluded) and the items each run handled."""

    name: str
    seconds: tuple[float, ...]
    items: int
    warmup_seconds: tuple[float, ...] = ()  # tracing, compiling, filling caches: not in the median

    @property
    def repeats(self) -> int:
        return len(self.seconds)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min_seconds(self) -> float:
        """The fastest repeat: the least disturbed by other programs (``timeit``'s choice)."""
        return min(self.seconds)

    @property
    def items_per_second(self) -> float:
        """Throughput of the median run."""
        return self.items / self.median_seconds

    @property
    def best_items_per_second(self) -> float:
        """Throughput of the fastest run, for comparisons on a machine shared with others."""
        return self.items / self.min_seconds


@dataclass(frozen=True)
class Comparison:
    """Measurements of several variants and the one the others are compared with."""

    measurements: tuple[Measurement, ...]
    baseline: str
    unit: str = "images/s"

    def __getitem__(self, name: str) -> Measurement:
        for measurement in self.measurements:
            if measurement.name == name:
                return measurement
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [measurement.name for measurement in self.measurements]

    def ratio(self, name: str) -> float:
        """Throughput of ``name`` divided by the baseline's: above 1 is faster than the baseline."""
        return self[name].items_per_second / self[self.baseline].items_per_second

    def ratios(self) -> dict[str, float]:
        return {name: self.ratio(name) for name in self.names}

    def table(self) -> str:
        """A fixed-width text table: throughput, median and fastest run, repeats, ratio.

        A median far above the fastest run means the machine was busy with something else:
        measure again, or raise the repeats.
        """
        width = max(len("variant"), *(len(name) for name in self.names))
        ratio_header = f"x {self.baseline}"
        ratio_width = max(7, len(ratio_header))
        lines = [
            f"{'variant':{width}s} {self.unit:>11s} {'median s':>9s} {'min s':>7s} {'repeats':>7s} "
            f"{'warm-up s':>9s} {ratio_header:>{ratio_width}s}"
        ]
        for measurement in self.measurements:
            warmup = sum(measurement.warmup_seconds)
            lines.append(
                f"{measurement.name:{width}s} {measurement.items_per_second:>11,.1f} "
                f"{measurement.median_seconds:>9.3f} {measurement.min_seconds:>7.3f} "
                f"{measurement.repeats:>7d} "
                f"{warmup:>9.2f} {self.ratio(measurement.name):>{ratio_width}.2f}"
            )
        return "\n".join(lines)


def compare(
    variants: Mapping[str, Callable[[], object]],
    *,
    items: int | Mapping[str, int] | None = None,
    baseline: str | None = None,
    warmup: int = 1,
    repeats: int = 3,
    unit: str = "images/s",
    clock: Clock = time.perf_counter,
) -> Comparison:
    """Time each variant ``repeats`` times after ``warmup`` untimed runs; one process, one table.

    A variant is a function without arguments doing one run of the work (an epoch, a few
    steps). How many items a run handled (images, say) comes from ``items`` (one number for all
    variants, or one per variant) or, when ``items`` is None, from the variant's return value.
    Warm-up runs absorb one-time costs (tracing a ``tf.function``, filling a cache, compiling
    with XLA) and are not timed. The timed repeats go round-robin over the variants, so a load
    that changes during the measurement affects them all alike. ``baseline`` defaults to the
    first variant.
    """
    if not variants:
        raise ValueError("compare needs at least one variant")
    if warmup < 0 or repeats < 1:
        raise ValueError("warmup must be >= 0 and repeats >= 1")
    names = list(variants)
    baseline = names[0] if baseline is None else baseline
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {names}")
    counts: dict[str, int] = {}

    def run(name: str) -> float:
        start = clock()
        result = variants[name]()
        elapsed = clock() - start
        if items is None:
            if not isinstance(result, int | np.integer):
                raise TypeError(f"variant {name!r} returned {result!r}: pass items= or return int")
            counts[name] = int(result)
        else:
            counts[name] = items if isinstance(items, int) else items[name]
        return elapsed

    warmups = {name: tuple(run(name) for _ in range(warmup)) for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            seconds[name].append(run(name))
    measurements = tuple(
        Measurement(name, tuple(seconds[name]), counts[name], warmups[name]) for name in names
    )
    return Comparison(measurements, baseline, unit)


def plot_ratios(
    comparison: Comparison,
    title: str,
    ax: plt.Axes | None = None,
    xlabel: str | None = None,
    log: bool = False,
) -> plt.Axes:
    """Horizontal bars of each variant's throughput ratio to the baseline, with a line at 1.

    ``log=True`` uses a logarithmic axis, for ratios that span orders of magnitude.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(comparison.names) + 1.2))
    ratios = comparison.ratios()
    names = list(reversed(comparison.names))
    values = [ratios[name] for name in names]
    bars = ax.barh(names, values, color=["tab:blue" if v >= 1 else "tab:orange" for v in values])
    ax.bar_label(bars, labels=[f"{v:.2f}x" for v in values], padding=3)
    ax.axvline(1.0, color="black", linewidth=1)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 2, max(values) * 4)
    else:
        ax.set_xlim(0, max(values) * 1.2)
    ax.set_title(title)
    scale = ", log scale" if log else ""
    ax.set_xlabel(xlabel or f"throughput relative to '{comparison.baseline}' (x{scale})")
    return ax


# ----------------------------------------------------------------------------------------------
# Feeding data: draining, replaying from memory, the naive Python generator
# ----------------------------------------------------------------------------------------------


def drain(batches: Iterable) -> int:
    """Iterate over every batch (so all the pipeline's work is done) and count the images."""
    count = 0
    for batch in batches:
        first = batch[0] if isinstance(batch, tuple | list) else batch
        count += int(first.shape[0])
    return count


def in_memory(batches: Iterable, count: int | None = None) -> tf.data.Dataset:
    """The first ``count`` batches (all when None), materialised once in memory.

    The upper bound of any input pipeline: no decoding, resizing or augmentation left to do,
    only slicing tensors. The batches are frozen (the same augmentation every epoch), so use it
    to measure speed, not to train. A last, smaller batch is dropped: the batch size is static.
    """
    taken = list(itertools.islice(iter(batches), count))
    if not taken:
        raise ValueError("in_memory got no batches")
    sizes = {int(np.shape(batch[0])[0]) for batch in taken}
    if len(sizes) != 1:  # keep the batch size static: drop a last, smaller batch
        taken = [batch for batch in taken if int(np.shape(batch[0])[0]) == max(sizes)]
    parts = tuple(np.stack([np.asarray(batch[i]) for batch in taken]) for i in range(len(taken[0])))
    return tf.data.Dataset.from_tensor_slices(parts)


def load_pair_pil(
    pair: Pair, image_size: int, rng: np.random.Generator | None = None, max_zoom: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """One pair read with PIL: image float32 ``(S, S, 3)`` in [0, 1], mask int32 ``(S, S)``.

    With ``rng``, the augmentation of ``pipeline.augment_pair`` done with PIL and NumPy: the same
    random flip and zoom-crop for image and mask, brightness and contrast for the image only.
    """
    with Image.open(pair.image) as file:
        image = file.convert("RGB")
    with Image.open(pair.mask) as file:
        mask = file.copy()
    if rng is not None:
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        width, height = image.size
        crop_width, crop_height = (
            int(side * rng.uniform(1 - max_zoom, 1)) for side in (width, height)
        )
        left = int(rng.integers(0, width - crop_width + 1))
        top = int(rng.integers(0, height - crop_height + 1))
        box = (left, top, left + crop_width, top + crop_height)
        image, mask = image.crop(box), mask.crop(box)
    image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    mask = mask.resize((image_size, image_size), Image.Resampling.NEAREST)
    pixels = np.asarray(image, np.float32) / 255.0
    if rng is not None:
        pixels = pixels + rng.uniform(-0.15, 0.15)
        mean = pixels.mean(axis=(0, 1), keepdims=True)
        pixels = np.clip((pixels - mean) * rng.uniform(0.8, 1.2) + mean, 0.0, 1.0)
    return pixels.astype(np.float32), np.asarray(mask, np.int32)


def naive_batches(
    pairs: Sequence[Pair],
    image_size: int,
    batch_size: int,
    *,
    augment: bool = True,
    seed: int | Sequence[int] = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``(images, masks)`` batches the way a first attempt often reads them (taught
    in notebook 05, which writes such a generator out; ``benchmarks/pipeline.py`` uses this one).

    A plain Python generator: shuffle the file list, then for each pair open the two PNG files
    with PIL, resize, optionally augment with NumPy, and stack a batch — one file at a time, in
    the Python thread that also drives training, with nothing cached between epochs.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        loaded = [load_pair_pil(pairs[i], image_size, rng if augment else None) for i in chunk]
        yield np.stack([p[0] for p in loaded]), np.stack([p[1] for p in loaded])


def generator_dataset(
    pairs: Sequence[Pair], image_size: int, batch_size: int, *, augment: bool = True, seed: int = 0
) -> tf.data.Dataset:
    """:func:`naive_batches` wrapped with ``tf.data.Dataset.from_generator`` for ``model.fit``.

    Each iteration (epoch) starts a new generator with a new seed, so the order and the
    augmentation change from epoch to epoch. Nothing else is added: no parallelism, no prefetch.
    """
    epochs = itertools.count()

    def epoch() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from naive_batches(
            pairs, image_size, batch_size, augment=augment, seed=(seed, next(epochs))
        )

    signature = (
        tf.TensorSpec((None, image_size, image_size, 3), tf.float32),
        tf.TensorSpec((None, image_size, image_size), tf.int32),
    )
    batches = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    # The generator's length is unknown to tf.data; say it, so Keras knows where an epoch ends.
    return batches.apply(tf.data.experimental.assert_cardinality(-(-len(pairs) // batch_size)))


def pipeline_variants(
    pairs: Sequence[Pair], image_size: int, batch_size: int, seed: int = 0
) -> dict[str, tf.data.Dataset]:
    """The input pipelines of notebook 05 (which builds them in the lesson), from worst to best,
    all augmented and shuffled, for ``benchmarks/pipeline.py``.

    ``"Python generator (PIL)"`` (:func:`generator_dataset`); ``"tf.data, parallel map"``,
    ``"+ cache"``, ``"+ prefetch"`` (``pipeline.make_pipeline`` without cache and prefetch, with
    cache, with both — the last is what every notebook uses); ``"in memory"``, one epoch of the
    last held in memory (:func:`in_memory`), the upper bound.
    """

    def files(cache: bool, prefetch: bool) -> tf.data.Dataset:
        return pipeline.make_pipeline(
            pairs,
            image_size,
            batch_size,
            augment=True,
            shuffle=True,
            seed=seed,
            cache=cache,
            prefetch=prefetch,
        )

    return {
        "Python generator (PIL)": generator_dataset(pairs, image_size, batch_size, seed=seed),
        "tf.data, parallel map": files(cache=False, prefetch=False),
        "+ cache": files(cache=True, prefetch=False),
        "+ prefetch": files(cache=True, prefetch=True),
        "in memory": in_memory(files(cache=True, prefetch=True)),
    }


def fit_steps(model: keras.Model, batches: tf.data.Dataset, steps: int) -> Callable[[], int]:
    """A variant for :func:`compare`: ``steps`` training steps with ``fit``; returns the images.

    ``batches`` (repeated as needed) must have a static batch size, as :func:`in_memory` gives.
    ``fit`` runs whole executions of the model's ``steps_per_execution`` steps (6 steps at 8 per
    execution are 8 steps), and the images are counted for the steps it ran.
    """
    batch_size = batches.element_spec[0].shape[0]
    if batch_size is None:
        raise ValueError("fit_steps needs batches with a static batch size (see in_memory)")
    batches = batches.repeat()

    def run() -> int:
        model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        per_execution = model.steps_per_execution
        return math.ceil(steps / per_execution) * per_execution * batch_size

    return run


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """Switch TensorFlow's op determinism on or off inside the block, then restore it.

    ``runtime.seed_everything`` switches it on, and Keras then refuses ``jit_compile=True``
    ("Model doesn't support jit_compile", because not every XLA kernel is deterministic) and
    leaves ``jit_compile="auto"`` — XLA by default on a GPU — off. To measure XLA, switch it off.
    Uses ``tensorflow.python.framework.config``: TensorFlow has no public "disable" function.
    """
    from tensorflow.python.framework import config

    before = config.is_op_determinism_enabled()
    (config.enable_op_determinism if enabled else config.disable_op_determinism)()
    try:
        yield
    finally:
        (config.enable_op_determinism if before else config.disable_op_determinism)()


def compare_batch_sizes(
    model: keras.Model,
    batches: tf.data.Dataset,
    batch_sizes: Sequence[int],
    images: int,
    *,
    baseline: int,
    repeats: int = 3,
) -> Comparison:
    """Training throughput of ``model`` at each batch size, on the same ``images`` per run
    (notebook 05 times it in the lesson; ``benchmarks/batch_size.py`` uses this, round-robin).

    ``batches`` (any batch size) is re-batched and held in memory (:func:`in_memory`), so only
    the model step is timed. Variants are named ``"batch <size>"``; see :func:`batch_size_table`.
    """
    variants = {}
    for size in batch_sizes:
        if images < size:
            raise ValueError(f"images ({images}) must be at least the batch size {size}")
        resized = in_memory(batches.unbatch().batch(size))
        variants[f"batch {size}"] = fit_steps(model, resized, images // size)
    return compare(variants, baseline=f"batch {baseline}", repeats=repeats)


def batch_size_table(comparison: Comparison) -> str:
    """Milliseconds per step, images/s and ratio for a :func:`compare_batch_sizes` result."""
    ratio_header = "x " + comparison.baseline
    lines = [f"{'batch size':>10s} {'ms per step':>12s} {'images/s':>9s} {ratio_header:>9s}"]
    for name in comparison.names:
        size = int(name.removeprefix("batch "))
        measurement = comparison[name]
        step_ms = 1000 * measurement.median_seconds / (measurement.items // size)
        lines.append(
            f"{size:>10d} {step_ms:>12.1f} {measurement.items_per_second:>9,.0f} "
            f"{comparison.ratio(name):>9.2f}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# How close to the machine's limit: FLOPs of a step, a measured peak
# ----------------------------------------------------------------------------------------------

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_TRANSPOSED = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


def _shape(tensor: object) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape[1:])  # drop the batch axis


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one forward pass of ``layer`` for one example.

    Counted for convolutions (``Conv1D/2D/3D``: output positions x kernel size), transposed
    convolutions (input positions x kernel size: each input value is spread over the kernel)
    and ``Dense`` (positions x kernel size). Everything else counts 0: bias additions,
    BatchNorm, activations, pooling, concatenation do a few operations per value, negligible in
    FLOPs — though not in time, as the profiler shows. Depthwise and separable convolutions
    are not counted. The layer must have been called (a built functional model).
    """
    if isinstance(layer, _TRANSPOSED):
        positions = int(np.prod(_shape(layer.input)[:-1]))
    elif isinstance(layer, (*_CONVOLUTIONS, keras.layers.Dense)):
        positions = int(np.prod(_shape(layer.output)[:-1]))
    else:
        return 0
    return positions * int(np.prod(layer.kernel.shape))


def _leaf_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def forward_flops_by_layer(model: keras.Model) -> dict[str, int]:
    """FLOPs of one forward pass for one example, per counted layer: 2 x MACs (see layer_macs).
    Taught in notebook 05, whose ``forward_flops`` asserts the same count for the U-Net."""
    return {
        layer.name: 2 * macs for layer in _leaf_layers(model) if (macs := layer_macs(layer)) > 0
    }


def training_step_flops(model: keras.Model, batch_size: int) -> int:
    """Estimated FLOPs of one training step on a batch: 3 x forward FLOPs x batch size.

    The usual approximation: the backward pass costs about twice the forward pass (one product
    for the gradient with respect to the layer's input, one for its weights), so forward +
    backward is about 3x forward. The optimizer's update (a few operations per weight) and the
    layers :func:`layer_macs` does not count are left out, so this is a slight under-estimate.
    """
    return 3 * sum(forward_flops_by_layer(model).values()) * batch_size


def matmul_flops_per_second(
    size: int = 2048, chain: int = 8, repeats: int = 3, dtype: str = "float32"
) -> float:
    """The FLOP/s this device reaches on its best case: a chain of large square matmuls (taught
    in notebook 05; used by the benchmarks).

    Each product of two ``size x size`` matrices is ``2 * size**3`` FLOPs. The chain runs inside
    one ``tf.function`` (a first, untimed call traces it), and the median of ``repeats`` runs
    counts; fetching the small result synchronises with a GPU. This is a practical peak, a
    little below the datasheet's.
    """
    generator = tf.random.Generator.from_seed(0)
    a = generator.normal((size, size), dtype=dtype)
    # Orthogonal matrix: repeated products keep their scale, no overflow in float16.
    b = tf.cast(tf.linalg.qr(generator.normal((size, size)))[0], dtype)

    @tf.function
    def run(x: tf.Tensor) -> tf.Tensor:
        for _ in range(chain):
            x = tf.matmul(x, b)
        return tf.reduce_sum(tf.cast(x, tf.float32))  # uses every product: nothing is pruned

    run(a).numpy()
    seconds = []
    for _ in range(repeats):
        with Stopwatch() as watch:
            run(a).numpy()
        seconds.append(watch.seconds)
    return chain * 2 * size**3 / statistics.median(seconds)


def cpu_frequency_hz() -> float | None:
    """The CPU clock the operating system reports (``cpu MHz`` in /proc/cpuinfo), if any."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) * 1e6
    except (OSError, ValueError):
        pass
    return None


# ----------------------------------------------------------------------------------------------
# Profiling: capture a trace, summarise it as top ops by time (no TensorBoard plugin needed)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpTime:
    """Total time of one TensorFlow op type in a trace, and its share of all op time."""

    op_type: str
    milliseconds: float
    share: float
    count: int


_OP_EVENT = re.compile(r"^(?P<scope>[^:]+):(?P<type>[A-Za-z_][A-Za-z0-9_]*)$")


def latest_trace(logdir: str | Path) -> Path:
    """The newest ``*.xplane.pb`` trace file under ``logdir``."""
    traces = sorted(Path(logdir).rglob("*.xplane.pb"), key=lambda path: path.stat().st_mtime)
    if not traces:
        raise FileNotFoundError(f"no profiler trace (*.xplane.pb) under {logdir}")
    return traces[-1]


def _op_type(name: str) -> str | None:
    match = _OP_EVENT.match(name)
    return match["type"] if match else None


def top_ops(trace: str | Path, limit: int | None = 10) -> list[OpTime]:
    """Op types by total time in a profiler trace (a ``.xplane.pb`` file or a folder holding one).

    On a CPU, TensorFlow records each op it executes as an event named ``scope:OpType`` on its
    compute threads' lines of the ``/host:CPU`` plane. On a GPU, the device planes
    (``/device:GPU:n``) hold the kernels, each tagged with the op that launched it (its
    ``tf_op`` stat); then only device time is counted. Threads run in parallel, so the shares are
    of total op time, not of wall time. ``limit=None`` returns every op type.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = Path(trace)
    if path.is_dir():
        path = latest_trace(path)
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    totals: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    device_planes = [plane for plane in space.planes if plane.name.startswith("/device:GPU")]
    for plane in device_planes or [p for p in space.planes if p.name == "/host:CPU"]:
        stat_names = {key: meta.name for key, meta in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if device_planes:
                    name = next(
                        (
                            stat.str_value or plane.stat_metadata[stat.ref_value].name
                            for stat in event.stats
                            if stat_names.get(stat.metadata_id) == "tf_op"
                        ),
                        "",
                    )
                op_type = _op_type(name)
                if op_type is not None:
                    totals[op_type] += event.duration_ps
                    counts[op_type] += 1
    total = sum(totals.values())
    return [
        OpTime(op_type, picoseconds / 1e9, picoseconds / total, counts[op_type])
        for op_type, picoseconds in totals.most_common(limit)
    ]


def ops_table(ops: Sequence[OpTime]) -> str:
    """A fixed-width text table of :func:`top_ops`."""
    width = max(len("op type"), *(len(op.op_type) for op in ops))
    lines = [f"{'op type':{width}s} {'ms':>9s} {'share':>6s} {'calls':>6s}"]
    lines += [
        f"{op.op_type:{width}s} {op.milliseconds:>9.1f} {op.share:>6.1%} {op.count:>6d}"
        for op in ops
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Short training runs with the time to a target validation mean IoU
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetRun:
    """What one short training run achieved within its epoch budget."""

    name: str
    epochs: int
    train_seconds: float  # validation excluded, tracing of the first step included
    images_per_second: float
    target: float
    seconds_to_target: float | None
    epochs_to_target: int | None
    val_mean_iou: tuple[float, ...]  # after each epoch
    seconds_at_epoch: tuple[float, ...]  # training seconds at the end of each epoch
    iou_per_class: tuple[float, ...] | None = None  # on validation, after the last epoch

    @property
    def best_val_mean_iou(self) -> float:
        return max(self.val_mean_iou)

    def best_within(self, seconds: float) -> float:
        """The best validation mean IoU of the epochs that ended within ``seconds`` of training
        (0.0 when none did)."""
        ended = zip(self.val_mean_iou, self.seconds_at_epoch, strict=True)
        return max((iou for iou, at in ended if at <= seconds), default=0.0)


def compile_with_optimizer(
    model: keras.Model,
    classes: Classes,
    optimizer: keras.optimizers.Optimizer,
    loss: str = "cross_entropy",
    **options: object,
) -> keras.Model:
    """``training.compile_for_segmentation`` with any optimizer; ``options`` go to
    ``model.compile`` (``jit_compile``, ``steps_per_execution``)."""
    return training.compile_for_segmentation(
        model, classes.num_classes, classes.ignore_index, None, loss, optimizer, **options
    )


@dataclass(frozen=True)
class RunSpec:
    """One short training run: the configuration, and what replaces the recipe's defaults.

    ``optimizer`` replaces ``Adam(config.learning_rate)``, ``model`` the default U-Net (build it
    under the configuration's dtype policy), ``train_pairs`` the training split (a smaller
    training set, say). ``per_class`` also records each class's validation IoU at the end.
    """

    config: training.TrainConfig
    optimizer: keras.optimizers.Optimizer | None = None
    model: keras.Model | None = None
    train_pairs: Sequence[Pair] | None = None
    per_class: bool = False


@dataclass
class _Run:
    """A run in progress: what :func:`train_side_by_side` needs between epochs."""

    spec: RunSpec
    model: keras.Model
    images: int
    train_batches: object
    val_batches: object
    timer: training.TimeToTarget
    val_mean_iou: list[float] = dataclasses.field(default_factory=list)
    seconds_at_epoch: list[float] = dataclasses.field(default_factory=list)


def _start_run(dataset: Dataset, spec: RunSpec, target: float) -> _Run:
    config = spec.config
    training.check_config(config)
    classes = dataset.classes
    runtime.seed_everything(config.seed)  # the same initial weights for every run of a seed
    training.set_precision(config)
    pairs = list(dataset.split("train") if spec.train_pairs is None else spec.train_pairs)
    model = spec.model or models.unet(
        classes.num_classes, image_size=config.image_size, base_filters=config.base_filters
    )
    optimizer = spec.optimizer or keras.optimizers.Adam(config.learning_rate)
    compile_with_optimizer(model, classes, optimizer, config.loss)
    train_batches, val_batches = training.recipe_batches(dataset, config, pairs)
    timer = training.TimeToTarget(target)
    return _Run(spec, model, len(pairs), train_batches, val_batches, timer)


def train_side_by_side(
    dataset: Dataset, specs: Mapping[str, RunSpec], target: float, *, progress: bool = False
) -> dict[str, BudgetRun]:
    """Train several short runs of the shared recipe, interleaved one epoch at a time.

    Each run has the seed, pipeline (augmentation and class weights as its configuration
    says), loss (``config.loss``) and metric of ``training.train``, without checkpoints and
    logs, for ``config.epochs`` epochs. The runs take turns, an epoch each (a ``fit`` call per
    epoch, which continues where the last one stopped), so a background load that comes and
    goes slows them all alike — the round-robin of :func:`compare`, for training. Records the
    training seconds (validation excluded) until validation mean IoU first reaches ``target``.
    ``progress`` prints a line after each round (benchmarks that run for many minutes).
    """
    runs = {name: _start_run(dataset, spec, target) for name, spec in specs.items()}
    started, rounds = time.perf_counter(), max(spec.config.epochs for spec in specs.values())
    for epoch in range(rounds):
        for run in runs.values():
            if epoch >= run.spec.config.epochs:
                continue
            history = run.model.fit(
                run.train_batches,
                validation_data=run.val_batches,
                initial_epoch=epoch,
                epochs=epoch + 1,
                shuffle=False,
                callbacks=[run.timer],
                verbose=0,
            )
            run.val_mean_iou.append(float(history.history["val_mean_iou"][-1]))
            run.seconds_at_epoch.append(run.timer.train_seconds)
        if progress:
            best = [max(run.val_mean_iou) for run in runs.values() if run.val_mean_iou]
            print(
                f"epoch {epoch + 1}/{rounds} of {len(runs)} run{'s' * (len(runs) > 1)}, "
                f"{time.perf_counter() - started:.0f} s: best validation mean IoU so far "
                f"{min(best):.3f}-{max(best):.3f}",
                flush=True,
            )
    results = {}
    for name, run in runs.items():
        iou = None
        if run.spec.per_class:
            matrix = training.confusion_on(run.model, run.val_batches, dataset.classes)
            iou = tuple(float(value) for value in metrics.iou_per_class(matrix))
        epochs = run.spec.config.epochs
        results[name] = BudgetRun(
            name=name,
            epochs=epochs,
            train_seconds=run.timer.train_seconds,
            images_per_second=epochs * run.images / run.timer.train_seconds,
            target=target,
            seconds_to_target=run.timer.seconds_to_target,
            epochs_to_target=run.timer.epoch_to_target,
            val_mean_iou=tuple(run.val_mean_iou),
            seconds_at_epoch=tuple(run.seconds_at_epoch),
            iou_per_class=iou,
        )
    return results


def train_for_budget(
    dataset: Dataset,
    config: training.TrainConfig,
    target: float,
    *,
    name: str = "run",
    optimizer: keras.optimizers.Optimizer | None = None,
    model: keras.Model | None = None,
    train_pairs: Sequence[Pair] | None = None,
    per_class: bool = False,
) -> BudgetRun:
    """One run of :func:`train_side_by_side`: ``config.epochs`` epochs, changing what is given."""
    spec = RunSpec(config, optimizer, model, train_pairs, per_class)
    return train_side_by_side(dataset, {name: spec}, target)[name]


def budget_table(
    variants: Mapping[str, Sequence[tuple[BudgetRun, float]]], budget_seconds: float = 120.0
) -> str:
    """Issue 14's figures (``benchmarks/train_unet.py``, ``precision.py``): per run, images/s,
    seconds to its target, the best validation mean IoU within ``budget_seconds`` of training
    and overall, and its share of the matmul peak (given with each run); then, per variant, the
    mean over its runs (seeds) and the seed range of the best mean IoU within the budget."""
    runs = [run for pairs in variants.values() for run, _ in pairs]
    width = max(len("run"), *(len(run.name) for run in runs))
    within = f"best@{budget_seconds:g}s"
    lines = [
        f"{'run':{width}s} {'images/s':>8s} {'s to ' + format(runs[0].target, 'g'):>8s}"
        f" {within:>9s} {'best':>6s} {'% of peak':>9s}"
    ]
    for run, share in (pair for pairs in variants.values() for pair in pairs):
        reached = f"{run.seconds_to_target:.0f}" if run.seconds_to_target is not None else "—"
        lines.append(
            f"{run.name:{width}s} {run.images_per_second:>8.0f} {reached:>8s}"
            f" {run.best_within(budget_seconds):>9.3f} {run.best_val_mean_iou:>6.3f} {share:>9.1%}"
        )
    for name, pairs in variants.items():
        scores = [run.best_within(budget_seconds) for run, _ in pairs]
        means = {
            "images/s": statistics.mean(run.images_per_second for run, _ in pairs),
            within: statistics.mean(scores),
            "best": statistics.mean(run.best_val_mean_iou for run, _ in pairs),
            "share of peak": statistics.mean(share for _, share in pairs),
        }
        lines.append(
            f"mean of {len(pairs)}, {name}: "
            + ", ".join(f"{key} {value:.3f}" for key, value in means.items())
            + f"; seed range of {within} {max(scores) - min(scores):.3f}"
        )
    return "\n".join(lines)


def runs_table(runs: Sequence[BudgetRun], baseline: str | None = None) -> str:
    """Time and epochs to the target, best validation mean IoU and speed of each run.

    The last column is the baseline's time to target divided by the run's (above 1: sooner).
    """
    if not runs:
        raise ValueError("runs_table needs at least one run")
    reference = next((r for r in runs if r.name == baseline), runs[0])
    width = max(len("run"), *(len(r.name) for r in runs))
    target = runs[0].target
    header = (
        f"{'run':{width}s} {'s to ' + format(target, '.2f'):>9s} {'epoch':>5s} "
        f"{'best mIoU':>9s} {'train s':>7s} {'images/s':>8s} {'speed-up':>8s}"
    )
    lines = [header]
    for run in runs:
        reached = run.seconds_to_target is not None
        seconds = f"{run.seconds_to_target:.1f}" if reached else "—"
        epoch = f"{run.epochs_to_target}" if reached else "—"
        speedup = "—"
        if reached and reference.seconds_to_target is not None:
            speedup = f"{reference.seconds_to_target / run.seconds_to_target:.2f}"
        lines.append(
            f"{run.name:{width}s} {seconds:>9s} {epoch:>5s} {run.best_val_mean_iou:>9.3f} "
            f"{run.train_seconds:>7.1f} {run.images_per_second:>8.0f} {speedup:>8s}"
        )
    return "\n".join(lines)
