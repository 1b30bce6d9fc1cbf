"""Benchmark: the recipe in float32 and in mixed_bfloat16, side by side on this CPU.

    python benchmarks/precision.py [--epochs 60] [--seeds 1 2]

For each seed, trains the recipe's U-Net twice — float32, then ``mixed_bfloat16`` (bfloat16
maths, float32 weights and logits) — interleaved one epoch at a time
(``perf.train_side_by_side``), so a background load slows both alike. Prints per run: training
images/s, seconds to validation mean IoU 0.9, the best validation mean IoU within 120 s of
training and overall, and the step's share of the measured matmul peak of its precision; then
the mean ratios. ``training.resolve_config`` turns bfloat16 on where the CPU has AMX tiles
(``runtime.cpu_has_amx_bfloat16``); this script is the measurement behind that rule.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
import keras

from helpers import data, models, perf, runtime, training

PRECISIONS = {"float32": False, "mixed_bfloat16": True}
BUDGET_SECONDS = 120.0  # issue 14's yardstick: the best validation mean IoU within 120 s


def best_within(run: perf.BudgetRun, seconds: float) -> float:
    """The best validation mean IoU of the epochs that ended within ``seconds`` of training."""
    reached = [
        iou for iou, at in zip(run.val_mean_iou, run.seconds_at_epoch, strict=True) if at <= seconds
    ]
    return max(reached, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--epochs", type=int, default=training.CPU_CONFIG.epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(runtime.device_report())
    dataset = data.load_dataset(args.dataset)
    base = dataclasses.replace(training.CPU_CONFIG, epochs=args.epochs)
    peaks = {
        name: perf.matmul_flops_per_second(dtype="bfloat16" if mixed else "float32")
        for name, mixed in PRECISIONS.items()
    }
    step_flops = perf.training_step_flops(
        models.unet(dataset.classes.num_classes, base.image_size, base_filters=base.base_filters),
        base.batch_size,
    )
    steps_per_epoch = -(-len(dataset.split("train")) // base.batch_size)
    specs = {
        (name, seed): perf.RunSpec(dataclasses.replace(base, seed=seed, mixed_precision=mixed))
        for seed in args.seeds
        for name, mixed in PRECISIONS.items()
    }
    runs = perf.train_side_by_side(
        dataset, {f"{name} seed {seed}": spec for (name, seed), spec in specs.items()}, 0.9
    )
    keras.mixed_precision.set_global_policy("float32")
    print("matmul peak: " + ", ".join(f"{n} {p / 1e9:,.0f} GFLOP/s" for n, p in peaks.items()))
    print(
        f"{'run':24s} {'images/s':>8s} {'s to 0.9':>8s} {'best@120s':>9s} {'best':>6s}"
        f" {'% of peak':>9s}"
    )
    summary: dict[str, dict[str, list[float]]] = {name: {} for name in PRECISIONS}
    for (name, _), run in zip(specs, runs.values(), strict=True):
        flops_per_second = run.epochs * steps_per_epoch * step_flops / run.train_seconds
        share = flops_per_second / peaks[name]
        reached = f"{run.seconds_to_target:.0f}" if run.seconds_to_target is not None else "—"
        within = best_within(run, BUDGET_SECONDS)
        print(
            f"{run.name:24s} {run.images_per_second:>8.0f} {reached:>8s} {within:>9.3f}"
            f" {run.best_val_mean_iou:>6.3f} {share:>9.1%}"
        )
        for key, value in (
            ("images/s", run.images_per_second),
            ("best@120s", within),
            ("best", run.best_val_mean_iou),
        ):
            summary[name].setdefault(key, []).append(value)
    for name, values in summary.items():
        print(
            f"mean of {len(args.seeds)} seeds, {name}: "
            + ", ".join(f"{key} {statistics.mean(v):.3f}" for key, v in values.items())
        )
    speed = statistics.mean(summary["mixed_bfloat16"]["images/s"]) / statistics.mean(
        summary["float32"]["images/s"]
    )
    print(f"mixed_bfloat16 / float32 training throughput: x{speed:.2f}")


if __name__ == "__main__":
    main()
