"""Benchmark: masks resized by majority vote (centred) vs nearest-neighbour (off-centre).

    python benchmarks/mask_resize.py [--seeds 42 43] [--epochs 60]

Trains the shared recipe once per seed and per way of resizing masks, in turns, and prints for
each run: the best validation mean IoU (scored against that run's own 64x64 labels, as the
recipe reports it), and two scores against a reference both runs share, the original 128x128
validation masks (the 64x64 logits upsampled bilinearly): mean IoU and mean boundary F-score.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from helpers import boundaries, data, metrics, pipeline, training

CENTRED = pipeline.resize_mask


def nearest_resize_mask(mask: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The course's former way: ``method="nearest"`` (source pixel 2i + 1 when halving)."""
    return tf.cast(tf.image.resize(mask[..., None], size, method="nearest")[..., 0], tf.int32)


def full_resolution_scores(model: keras.Model, dataset: data.Dataset, size: int) -> tuple:
    """Mean IoU and mean boundary F-score at the masks' own resolution (logits upsampled)."""
    pairs = dataset.split("val")
    truth = np.stack([np.asarray(Image.open(pair.mask)) for pair in pairs])
    images, _ = next(iter(pipeline.make_pipeline(pairs, size, batch_size=len(pairs))))
    logits = model.predict(images, verbose=0)
    upsampled = tf.image.resize(logits, truth.shape[1:], method="bilinear").numpy()
    predicted = upsampled.argmax(axis=-1)
    classes = dataset.classes
    matrix = metrics.confusion_matrix(truth, predicted, classes.num_classes, classes.ignore_index)
    f_score = boundaries.boundary_f_score(
        truth, predicted, classes.num_classes, tolerance=1, ignore_index=classes.ignore_index
    )
    return metrics.mean_iou(matrix), float(np.nanmean(f_score))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--epochs", type=int, default=None, help="default: the device's config")
    args = parser.parse_args()
    dataset = data.load_dataset(args.dataset)
    overrides = {"patience": 1000} | ({"epochs": args.epochs} if args.epochs else {})
    variants = {"nearest (before)": nearest_resize_mask, "majority (after)": CENTRED}
    print(
        f"{'masks resized by':18s} {'seed':>4s} {'best val mIoU':>13s} {'s to 0.9':>8s} "
        f"{'mIoU @128':>9s} {'boundary F @128':>15s} {'wall s':>6s}",
        flush=True,
    )
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for seed in args.seeds:
        config = training.resolve_config(seed=seed, **overrides)
        for name, resize in variants.items():
            pipeline.resize_mask = resize  # decode_pair looks the function up when traced
            timer = training.TimeToTarget(0.9)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as run_dir:
                model, history = training.train(
                    dataset, config, run_dir=Path(run_dir), callbacks=[timer], verbose=0
                )
            wall = time.perf_counter() - start
            best = max(history["val_mean_iou"])
            full_iou, full_f = full_resolution_scores(model, dataset, config.image_size)
            results[name].append((best, full_iou, full_f))
            to_target = timer.seconds_to_target
            reached = f"{to_target:.0f}" if to_target is not None else "—"
            print(
                f"{name:18s} {seed:>4d} {best:>13.3f} {reached:>8s} {full_iou:>9.3f} "
                f"{full_f:>15.3f} {wall:>6.0f}",
                flush=True,
            )
    pipeline.resize_mask = CENTRED
    for name, rows in results.items():
        best, full_iou, full_f = np.mean(rows, axis=0)
        print(
            f"mean of {len(rows)} seeds, {name}: best val mIoU {best:.3f}, "
            f"mIoU @128 {full_iou:.3f}, boundary F @128 {full_f:.3f}"
        )


if __name__ == "__main__":
    main()
