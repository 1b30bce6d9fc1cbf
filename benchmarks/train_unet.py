"""Benchmark: the shared recipe's speed and quality, the figures of issue 14, side by side.

    python benchmarks/train_unet.py [--widths 8 16] [--batch-sizes 8 16] [--seeds 1 2]
                                    [--epochs 60] [--dataset shapes]

Trains the recipe's U-Net (the device's configuration) for every width (base filters), batch
size and seed, interleaved one epoch at a time (``perf.train_side_by_side``), so a background
load slows every run alike. A batch size other than the configuration's gets the learning rate
scaled with it (linear rule, notebook 08). Per run it prints training images/s, training seconds
(validation excluded) to validation mean IoU 0.9, the best validation mean IoU within 120 s of
training and overall, and the step's share of the measured float32 matmul peak (FLOPs of a
training step per image x images/s / peak); then the mean over seeds of each variant.
Goal (issue 14, 2 cores): best validation mean IoU >= 0.95 within 120 s of training, and >= 25 %
of the measured matmul peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
from helpers import data, models, perf, runtime, training

BUDGET_SECONDS = 120.0  # issue 14's yardstick: the best validation mean IoU within 120 s
TARGET = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--epochs", type=int, default=None, help="default: the device's config")
    parser.add_argument("--widths", type=int, nargs="+", default=None, help="default: config's")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=None, help="default: config's"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(runtime.device_report())
    dataset = data.load_dataset(args.dataset)
    base = training.resolve_config(**({"epochs": args.epochs} if args.epochs else {}))
    peak = perf.matmul_flops_per_second()
    print(f"float32 matmul peak: {peak / 1e9:,.0f} GFLOP/s; recipe: {base}")
    variants = {}
    for width, batch in itertools.product(
        args.widths or [base.base_filters], args.batch_sizes or [base.batch_size]
    ):
        rate = base.learning_rate * batch / base.batch_size
        config = dataclasses.replace(base, base_filters=width, batch_size=batch, learning_rate=rate)
        variants[f"{width} filters, batch {batch}"] = config
    specs = {
        f"{name}, seed {seed}": perf.RunSpec(dataclasses.replace(config, seed=seed))
        for name, config in variants.items()
        for seed in args.seeds
    }
    runs = perf.train_side_by_side(dataset, specs, TARGET)
    print(
        f"{'run':32s} {'images/s':>8s} {f's to {TARGET}':>8s} {'best@120s':>9s} {'best':>6s}"
        f" {'% of peak':>9s}"
    )
    summary: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    for name, config in variants.items():
        model = models.unet(dataset.classes.num_classes, config.image_size, config.base_filters)
        flops_per_image = perf.training_step_flops(model, 1)
        for seed in args.seeds:
            run = runs[f"{name}, seed {seed}"]
            share = flops_per_image * run.images_per_second / peak
            reached = f"{run.seconds_to_target:.0f}" if run.seconds_to_target is not None else "—"
            within = run.best_within(BUDGET_SECONDS)
            print(
                f"{run.name:32s} {run.images_per_second:>8.0f} {reached:>8s} {within:>9.3f}"
                f" {run.best_val_mean_iou:>6.3f} {share:>9.1%}"
            )
            for key, value in (
                ("images/s", run.images_per_second),
                ("best@120s", within),
                ("best", run.best_val_mean_iou),
                ("share of peak", share),
            ):
                summary[name].setdefault(key, []).append(value)
    for name, values in summary.items():
        print(
            f"mean of {len(args.seeds)} seeds, {name}: "
            + ", ".join(f"{key} {statistics.mean(v):.3f}" for key, v in values.items())
            + f"; seed range of best@120s {max(values['best@120s']) - min(values['best@120s']):.3f}"
        )
    print("goal (issue 14): best@120s >= 0.95 and >= 25 % of the matmul peak, on 2 cores")


if __name__ == "__main__":
    main()
