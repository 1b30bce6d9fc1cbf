"""Benchmark: batch size — time per step, images/s, time to a target mIoU (notebook 05, 3).

    python benchmarks/batch_size.py [--epochs 8] [--target 0.35] [--repeats 2]

Prints the two tables of notebook 05: training speed on in-memory batches for batch sizes 8, 16,
32 and 64 (milliseconds per step, images/s, ratio to the default batch size), then short runs
of the shared recipe at each batch size (same learning rate and seed, ``--epochs`` epochs,
interleaved an epoch at a time) with the training seconds until validation mean IoU first
reaches ``--target``.
"""

from __future__ import annotations

import argparse
import dataclasses

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
from helpers import data, models, perf, pipeline, runtime, training

BATCH_SIZES = (8, 16, 32, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per training run")
    parser.add_argument("--target", type=float, default=0.35, help="validation mean IoU")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs after one warm-up")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    runtime.seed_everything(args.seed)
    print(runtime.device_report())
    config = training.resolve_config(seed=args.seed, epochs=args.epochs)
    training.set_precision(config)
    dataset = data.load_dataset(args.dataset)
    classes = dataset.classes

    model = models.unet(
        classes.num_classes, image_size=config.image_size, base_filters=config.base_filters
    )
    training.compile_for_segmentation(
        model, classes.num_classes, classes.ignore_index, config.learning_rate, config.loss
    )
    batches = pipeline.make_pipeline(
        dataset.split("train"), config.image_size, config.batch_size, augment=True
    )
    speeds = perf.compare_batch_sizes(
        model,
        batches,
        BATCH_SIZES,
        images=args.epochs * 16,
        baseline=config.batch_size,
        repeats=args.repeats,
    )
    print(f"\nTraining speed on in-memory batches ({args.epochs * 16} images per run)")
    print(perf.batch_size_table(speeds))

    specs = {
        f"batch {size}": perf.RunSpec(dataclasses.replace(config, batch_size=size))
        for size in BATCH_SIZES
    }
    # an epoch each, in turn
    runs = perf.train_side_by_side(dataset, specs, args.target, progress=True)
    print(
        f"\nTime to validation mean IoU {args.target} ({args.epochs} epochs each, learning rate "
        f"{config.learning_rate}, loss {config.loss})"
    )
    print(perf.runs_table(list(runs.values()), baseline=f"batch {config.batch_size}"))


if __name__ == "__main__":
    main()
