"""Benchmark: train the default U-Net with the shared recipe; print speed and quality.

    python benchmarks/train_unet.py [--epochs 40] [--dataset shapes]

Prints images/s of training, training seconds (validation excluded) to validation mean IoU 0.8
and 0.9, and the best validation mean IoU. Goal (issue 4): >= 0.90 within 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from helpers import data, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--epochs", type=int, default=None, help="default: the device's config")
    args = parser.parse_args()
    dataset = data.load_dataset(args.dataset)
    overrides = {"patience": 1000} | ({"epochs": args.epochs} if args.epochs else {})
    config = training.resolve_config(**overrides)
    timers = [training.TimeToTarget(target) for target in (0.8, 0.9)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        _, history = training.train(
            dataset, config, run_dir=Path(run_dir), callbacks=timers, verbose=0
        )
    wall = time.perf_counter() - start
    epochs = len(history["loss"])
    images = epochs * len(dataset.split("train"))
    print(f"config: {config}")
    print(f"{epochs} epochs in {wall:.0f} s wall, {timers[0].train_seconds:.0f} s of training:")
    print(f"  training throughput: {images / timers[0].train_seconds:,.0f} images/s")
    for timer in timers:
        reached = (
            f"{timer.seconds_to_target:.0f} s (epoch {timer.epoch_to_target})"
            if timer.seconds_to_target is not None
            else "not reached"
        )
        print(f"  time to validation mean IoU {timer.target}: {reached}")
    best = max(history["val_mean_iou"])
    print(f"  best validation mean IoU: {best:.3f} (goal >= 0.90 within 120 s of training)")


if __name__ == "__main__":
    main()
