"""Benchmark: the recipe's loss — cross-entropy + Dice against class-weighted cross-entropy.

    python benchmarks/losses.py [--budgets 15 60] [--seeds 42 43 44]

Notebooks 03, 05 and 06 each train one seed per loss; this script settles the question with
several seeds at equal budgets. For every budget (in epochs) it trains the recipe's U-Net with
plain cross-entropy, class-weighted cross-entropy (weights proportional to 1/sqrt(frequency))
and cross-entropy + Dice (the recipe's default), for every seed, interleaved one epoch at a time
(``perf.train_side_by_side``) with the recipe's learning-rate schedule. Per loss it prints the
best validation mean IoU and the rare class's validation IoU after the last epoch, as the mean
over seeds and the seed range, and each difference to the default: a difference smaller than
the larger of the two losses' seed ranges is within noise.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
import keras
import numpy as np

from helpers import data, losses, perf, training

LOSSES = {
    "cross-entropy": {"loss": "cross_entropy"},
    "CE + class weights": {"loss": "cross_entropy", "class_weight_power": 0.5},
    "CE + Dice": {"loss": "cross_entropy_dice"},
}
DEFAULT = "CE + Dice"


def run_name(loss: str, seed: int) -> str:
    return f"{loss} | seed {seed}"


def specs_for(dataset: data.Dataset, epochs: int, seeds: list[int]) -> dict[str, perf.RunSpec]:
    """One run per loss and seed: the recipe's configuration, schedule and per-class IoU."""
    specs = {}
    train_size = len(dataset.split("train"))
    for name, overrides in LOSSES.items():
        for seed in seeds:
            config = training.resolve_config(epochs=epochs, seed=seed, **overrides)
            schedule = training.learning_rate_for(config, train_size)
            specs[run_name(name, seed)] = perf.RunSpec(
                config, optimizer=keras.optimizers.Adam(schedule), per_class=True
            )
    return specs


def summary(values: list[float]) -> str:
    """The mean over seeds and the seed range: ``0.812 (0.80-0.83)``."""
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def report(runs: dict[str, perf.BudgetRun], seeds: list[int], rare: int, rare_name: str) -> None:
    """Print the table of one budget and each loss's difference to the default."""
    best = {name: [runs[run_name(name, s)].best_val_mean_iou for s in seeds] for name in LOSSES}
    rare_iou = {
        name: [runs[run_name(name, s)].iou_per_class[rare] for s in seeds] for name in LOSSES
    }
    print(
        f"{'loss':20s} {'best val mIoU, mean (range)':>28s} {rare_name + ' IoU, last epoch':>26s}"
    )
    for name in LOSSES:
        print(f"{name:20s} {summary(best[name]):>28s} {summary(rare_iou[name]):>26s}")
    for name in LOSSES:
        if name == DEFAULT:
            continue
        difference = statistics.mean(best[name]) - statistics.mean(best[DEFAULT])
        noise = max(max(best[n]) - min(best[n]) for n in (name, DEFAULT))
        verdict = "within noise" if abs(difference) <= noise else "outside the noise"
        print(
            f"  {name} - {DEFAULT}: {difference:+.3f} best mIoU; the larger seed range of the "
            f"two: {noise:.3f}: {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--budgets", type=int, nargs="+", default=[15, 60], help="epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    args = parser.parse_args()
    dataset = data.load_dataset(args.dataset)
    classes = dataset.classes
    counts = data.class_pixel_counts(dataset.split("train"), classes.num_classes)
    rare = int(np.argmax(losses.class_weights_from_counts(counts)))  # as notebook 06
    print(f"{args.dataset}: rare class {classes.names[rare]} ({counts[rare] / counts.sum():.1%})")
    for epochs in args.budgets:
        runs = perf.train_side_by_side(
            dataset, specs_for(dataset, epochs, args.seeds), 0.9, progress=True
        )
        seconds = statistics.mean(run.train_seconds for run in runs.values())
        print(f"\n{epochs} epochs, seeds {args.seeds} ({seconds:.0f} s of training per run):")
        report(runs, args.seeds, rare, classes.names[rare])
    print(f"\nconfiguration (seed and loss varied): {dataclasses.asdict(training.CPU_CONFIG)}")


if __name__ == "__main__":
    main()
