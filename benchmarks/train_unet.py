"""Benchmark: the shared recipe's speed and quality, the figures of issue 14, side by side.

    python benchmarks/train_unet.py [--widths 8 16] [--batch-sizes 8 16] [--seeds 1 2]
                                    [--epochs 60] [--dataset shapes]

Trains the recipe's U-Net (the device's configuration) for every width (base filters), batch
size and seed, interleaved one epoch at a time (``perf.train_side_by_side``), so a background
load slows every run alike. Every run decays its learning rate as the recipe does; a batch size
other than the configuration's gets the rate scaled with it (linear rule, notebook 08). Per run
it prints training images/s, training seconds (validation excluded) to validation mean IoU 0.9,
the best validation mean IoU within 120 s of training and overall, and the step's share of the
measured float32 matmul peak (FLOPs of a training step per image x images/s / peak); then the
mean over seeds of each variant.
Goal (issue 14, 2 cores): best validation mean IoU >= 0.95 within 120 s of training, and >= 25 %
of the measured matmul peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
import keras

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
    train_size = len(dataset.split("train"))
    specs = {  # each run with the recipe's decaying rate (training.learning_rate_for)
        f"{name}, seed {seed}": perf.RunSpec(
            dataclasses.replace(config, seed=seed),
            optimizer=keras.optimizers.Adam(training.learning_rate_for(config, train_size)),
        )
        for name, config in variants.items()
        for seed in args.seeds
    }
    runs = perf.train_side_by_side(dataset, specs, TARGET, progress=True)
    table = {}
    for name, config in variants.items():
        model = models.unet(dataset.classes.num_classes, config.image_size, config.base_filters)
        flops_per_image = perf.training_step_flops(model, 1)
        seeded = [runs[f"{name}, seed {seed}"] for seed in args.seeds]
        table[name] = [(run, flops_per_image * run.images_per_second / peak) for run in seeded]
    print(perf.budget_table(table, BUDGET_SECONDS))
    print("goal (issue 14): best@120s >= 0.95 and >= 25 % of the matmul peak, on 2 cores")


if __name__ == "__main__":
    main()
