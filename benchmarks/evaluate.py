"""Benchmark: notebook 04's final comparison on the test split, for the default configuration.

    python benchmarks/evaluate.py [--dataset shapes] [--fcn-epochs 8]

Loads the U-Net that notebook 03 saved (``artifacts/<dataset>/unet-<config id>.keras``, see
``training.model_path``) or trains it with the shared recipe, trains an FCN briefly, and prints
pixel accuracy, mean IoU and per-class IoU of: all background, the blog post's classifier at
its best, an untrained U-Net, the FCN, the U-Net, and the U-Net with flip test-time
augmentation; then the U-Net's prediction speed with and without TTA, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from helpers import calibration, data, metrics, models, pipeline, runtime, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--fcn-epochs", type=int, default=8)
    args = parser.parse_args()
    config = training.resolve_config()
    training.set_precision(config)
    dataset = data.load_dataset(args.dataset)
    classes = dataset.classes
    model = training.load_or_train(dataset, config)

    batches = pipeline.make_pipeline(dataset.split("test"), config.image_size, config.batch_size)
    pairs = [(images.numpy(), masks.numpy()) for images, masks in batches]
    images = np.concatenate([pair[0] for pair in pairs])
    masks = np.concatenate([pair[1] for pair in pairs])

    runtime.seed_everything(config.seed)  # as in notebook 04: the same untrained weights
    untrained = models.unet(
        classes.num_classes, image_size=config.image_size, base_filters=config.base_filters
    )
    runtime.seed_everything(config.seed)
    fcn = models.fcn(classes.num_classes, image_size=config.image_size)
    fcn_config = training.TrainConfig(**{**config.__dict__, "epochs": args.fcn_epochs})
    with tempfile.TemporaryDirectory() as run_dir:
        fcn, _ = training.train(dataset, fcn_config, model=fcn, run_dir=Path(run_dir), verbose=0)

    seconds = {}
    for flip_tta in (False, True):
        calibration.predict_probabilities(model, images[:8], flip_tta=flip_tta)  # warm up
        start = time.perf_counter()
        probabilities = calibration.predict_probabilities(model, images, flip_tta=flip_tta)
        seconds[flip_tta] = time.perf_counter() - start
    tta_masks = probabilities.argmax(axis=-1)

    def confusion(predicted: np.ndarray) -> np.ndarray:
        return metrics.confusion_matrix(masks, predicted, classes.num_classes, classes.ignore_index)

    matrices = {
        "all background": confusion(np.zeros_like(masks)),
        "blog post classifier, at best": confusion(
            metrics.best_single_label_masks(masks, classes.num_classes, classes.ignore_index)
        ),
        "untrained U-Net": training.confusion_on(untrained, batches, classes),
        f"FCN ({args.fcn_epochs} epochs)": training.confusion_on(fcn, batches, classes),
        "U-Net (notebook 03)": training.confusion_on(model, batches, classes),
        "U-Net + flip TTA": confusion(tta_masks),
    }
    print(f"config: {config}")
    print(f"test split of {dataset.name}: {len(images)} images")
    print(metrics.comparison_table(matrices, classes.names))
    plain, tta = (len(images) / seconds[flag] for flag in (False, True))
    print(
        f"U-Net prediction: {plain:,.0f} images/s plain, {tta:,.0f} images/s with flip TTA "
        f"({seconds[True] / seconds[False]:.1f}x the time)"
    )


if __name__ == "__main__":
    main()
