"""Benchmark: the input pipeline alone, and training with each pipeline (notebook 05, section 2).

    python benchmarks/pipeline.py [--dataset shapes] [--repeats 2]

Prints two tables, as notebook 05 does: images/s of each pipeline alone (Python generator,
tf.data with parallel map, + cache, + prefetch, in memory), then images/s of one training epoch
of the default U-Net fed by each, with the ratio to the in-memory upper bound. Goal (issue 6):
the best file-based pipeline trains at >= 0.95 of the in-memory throughput.
"""

from __future__ import annotations

import argparse

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
from helpers import data, models, perf, runtime, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs after one warm-up")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    runtime.seed_everything(args.seed)
    print(runtime.device_report())
    config = training.resolve_config(seed=args.seed)
    training.set_precision(config)
    dataset = data.load_dataset(args.dataset)
    classes, pairs = dataset.classes, dataset.split("train")
    feeds = perf.pipeline_variants(pairs, config.image_size, config.batch_size, seed=args.seed)
    images_per_epoch = {name: perf.drain(feed) for name, feed in feeds.items()}

    alone = perf.compare(
        {name: lambda feed=feed: perf.drain(feed) for name, feed in feeds.items()},
        baseline="in memory",
        repeats=args.repeats,
    )
    print(
        f"\nPipeline alone ({len(pairs)} images, {config.image_size}px, batch {config.batch_size})"
    )
    print(alone.table())

    model = models.unet(
        classes.num_classes, image_size=config.image_size, base_filters=config.base_filters
    )
    training.compile_for_segmentation(
        model, classes.num_classes, classes.ignore_index, config.learning_rate, config.loss
    )
    together = perf.compare(
        {
            name: lambda feed=feed: model.fit(feed, epochs=1, shuffle=False, verbose=0)
            for name, feed in feeds.items()
        },
        items=images_per_epoch,
        baseline="in memory",
        repeats=args.repeats,
    )
    print(f"\nTraining one epoch with each pipeline (U-Net, {model.count_params():,d} weights)")
    print(together.table())
    file_based = [name for name in feeds if name != "in memory"]
    best = max(file_based, key=together.ratio)
    print(
        f"\nbest file-based pipeline: '{best}', {together.ratio(best):.2f} x in-memory throughput "
        "(goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
