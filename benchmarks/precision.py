"""Benchmark: float32 against mixed_bfloat16 on this CPU — the step by U-Net width, then the recipe.

    python benchmarks/precision.py [--epochs 60] [--seeds 1 2] [--widths 8 16 32]

1. Training throughput of one step of the U-Net with 8, 16 and 32 base filters in float32 and
   in ``mixed_bfloat16`` (bfloat16 maths, float32 weights and logits), round-robin
   (``perf.compare``), on batches in memory, and each step's share of the measured matmul
   peak of its precision.
2. The recipe, float32 and ``mixed_bfloat16`` for each seed, interleaved one epoch at a time
   (``perf.train_side_by_side``), so a background load slows both alike. Per run: training
   images/s, seconds to validation mean IoU 0.9, the best validation mean IoU within 120 s of
   training and overall, and the step's share of the measured matmul peak of its precision.

This is the measurement behind ``training.resolve_config`` keeping float32 on every CPU, also
on CPUs with AMX bfloat16 tiles (``runtime.cpu_has_amx_bfloat16``): measured on 2 cores of such
a Xeon, bfloat16 made large matmuls 4x faster and the 32-filter step 1.5-1.8x, but the
8-filter step only 0.94-1.14x and the recipe trained at the same images/s (x1.00, 2 seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
import keras

from helpers import data, models, perf, pipeline, runtime, training

PRECISIONS = {"float32": False, "mixed_bfloat16": True}
BUDGET_SECONDS = 120.0  # issue 14's yardstick: the best validation mean IoU within 120 s


def step_by_width(
    dataset: data.Dataset, widths: list[int]
) -> tuple[perf.Comparison, dict[str, int]]:
    """Training throughput of the U-Net at each width and precision, on batches in memory, and
    the FLOPs of a training step per image of each variant."""
    config, classes = training.CPU_CONFIG, dataset.classes
    batches = perf.in_memory(
        pipeline.make_pipeline(dataset.split("train"), config.image_size, config.batch_size), 8
    )
    steps, flops_per_image = {}, {}
    for width in widths:
        for name in PRECISIONS:
            keras.mixed_precision.set_global_policy(name)
            model = models.unet(classes.num_classes, config.image_size, base_filters=width)
            keras.mixed_precision.set_global_policy("float32")
            perf.compile_with_optimizer(
                model, classes, keras.optimizers.Adam(config.learning_rate), config.loss
            )
            variant = f"{name}, {width} filters"
            steps[variant] = perf.fit_steps(model, batches, 8)
            flops_per_image[variant] = perf.training_step_flops(model, 1)
    with perf.op_determinism(False):
        return perf.compare(steps, repeats=3), flops_per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--epochs", type=int, default=training.CPU_CONFIG.epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()
    print(runtime.device_report())
    dataset = data.load_dataset(args.dataset)
    peaks = {
        name: perf.matmul_flops_per_second(dtype="bfloat16" if mixed else "float32")
        for name, mixed in PRECISIONS.items()
    }
    print("matmul peak: " + ", ".join(f"{n} {p / 1e9:,.0f} GFLOP/s" for n, p in peaks.items()))
    by_width, flops_per_image = step_by_width(dataset, args.widths)
    print(by_width.table())
    for variant, flops in flops_per_image.items():
        precision = variant.split(",")[0]
        share = flops * by_width[variant].items_per_second / peaks[precision]
        print(f"{variant:26s} {share:6.1%} of the {precision} matmul peak")
    base = dataclasses.replace(training.CPU_CONFIG, epochs=args.epochs)
    recipe_flops_per_image = perf.training_step_flops(
        models.unet(dataset.classes.num_classes, base.image_size, base_filters=base.base_filters),
        1,
    )
    train_size = len(dataset.split("train"))
    specs = {  # each run with the recipe's decaying rate (training.learning_rate_for)
        (name, seed): perf.RunSpec(
            dataclasses.replace(base, seed=seed, mixed_precision=mixed),
            optimizer=keras.optimizers.Adam(training.learning_rate_for(base, train_size)),
        )
        for seed in args.seeds
        for name, mixed in PRECISIONS.items()
    }
    runs = perf.train_side_by_side(
        dataset,
        {f"{name} seed {seed}": spec for (name, seed), spec in specs.items()},
        0.9,
        progress=True,
    )
    keras.mixed_precision.set_global_policy("float32")
    table: dict[str, list[tuple[perf.BudgetRun, float]]] = {name: [] for name in PRECISIONS}
    for (name, _), run in zip(specs, runs.values(), strict=True):
        share = recipe_flops_per_image * run.images_per_second / peaks[name]
        table[name].append((run, share))  # as benchmarks/train_unet.py computes it
    print(perf.budget_table(table, BUDGET_SECONDS))
    speed = statistics.mean(run.images_per_second for run, _ in table["mixed_bfloat16"]) / (
        statistics.mean(run.images_per_second for run, _ in table["float32"])
    )
    print(f"mixed_bfloat16 / float32 training throughput: x{speed:.2f}")


if __name__ == "__main__":
    main()
