"""Benchmark: real-photo quality on the committed sample (issue 33), two recipes side by side.

    python benchmarks/pets_sample.py [--seeds 1 2] [--frozen-epochs 6] [--fine-tune-epochs 10]
                                     [--fine-tune-rate 3e-4] [--scratch-epochs 60]
                                     [--image-size 128] [--recipes pretrained scratch]

- ``pretrained``: ``models.mobilenet_v2_unet(alpha=1.0)`` with the ImageNet weights that ship with
  the course (``weights/``), the backbone frozen for ``--frozen-epochs`` at the recipe's rate,
  then fine-tuned (BatchNorm kept frozen) for ``--fine-tune-epochs`` at ``--fine-tune-rate``
  (notebook 07's two phases);
- ``scratch``: the course's recipe (``training.train``: 8-filter U-Net) for ``--scratch-epochs``.

Both at ``--image-size`` pixels, batch 8, cross-entropy + Dice, flips/brightness/contrast
augmentation, on the train split of ``pets_sample``; the model kept is the one after the last
epoch (pretrained) or the recipe's best validation epoch (scratch). Per run it prints the
training seconds, test mean IoU and per-class IoU; then the same scores of the true test masks
moved 1 and 2 pixels sideways (a perfect outline drawn that far off: how little room the thin
border class leaves), and the goal check.
Goal (issue 33, 2 CPU cores): test mean IoU >= 0.80 within 600 s of training with the pretrained
encoder; the best from-scratch U-Net within the same 600 s beside it.
"""

from __future__ import annotations

import argparse
import time

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
import keras
import numpy as np

from helpers import data, metrics, models, pipeline, runtime, training

BATCH_SIZE, LEARNING_RATE = 8, 3e-3
BUDGET_SECONDS, TARGET = 600.0, 0.80


def pretrained_run(
    dataset: data.Dataset, seed: int, size: int, frozen: int, fine_tune: int, fine_rate: float
) -> keras.Model:
    """Notebook 07's recipe: the ImageNet backbone frozen, then fine-tuned at a tenth the rate."""
    classes = dataset.classes
    runtime.seed_everything(seed)
    model = models.mobilenet_v2_unet(classes.num_classes, size, "imagenet", alpha=1.0)
    backbone = model.get_layer("mobilenet_v2")
    batches = pipeline.make_pipeline(
        dataset.split("train"),
        size,
        BATCH_SIZE,
        augment=True,
        max_zoom=0.0,
        shuffle=True,
        seed=seed,
    )
    for trainable, epochs, rate in ((False, frozen, LEARNING_RATE), (True, fine_tune, fine_rate)):
        models.set_trainable([backbone], trainable)
        training.compile_for_segmentation(
            model, classes.num_classes, classes.ignore_index, rate, loss="cross_entropy_dice"
        )
        model.fit(batches, epochs=epochs, shuffle=False, verbose=0)
    return model


def scratch_run(dataset: data.Dataset, seed: int, size: int, epochs: int) -> keras.Model:
    """The course's recipe (notebook 03)."""
    config = training.resolve_config(image_size=size, epochs=epochs, seed=seed)
    model, _ = training.train(dataset, config, verbose=0)
    return model


def shifted_truth_ious(batches, num_classes: int, shifts=(1, 2)) -> dict[int, list[float]]:
    """Per-class IoU of the true masks against themselves moved ``shift`` pixels sideways: what a
    model scores that draws every outline perfectly but that many pixels off."""
    masks = np.concatenate([masks.numpy() for _, masks in batches])
    return {
        shift: metrics.iou_per_class(
            metrics.confusion_matrix(
                masks[:, :, shift:], np.roll(masks, shift, axis=2)[:, :, shift:], num_classes
            )
        ).tolist()
        for shift in shifts
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frozen-epochs", type=int, default=6)
    parser.add_argument("--fine-tune-epochs", type=int, default=10)
    parser.add_argument("--fine-tune-rate", type=float, default=3e-4)
    parser.add_argument("--scratch-epochs", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--recipes", nargs="+", default=["pretrained", "scratch"])
    args = parser.parse_args()
    print(runtime.device_report())
    dataset = data.load_dataset("pets_sample")
    classes = dataset.classes
    size = args.image_size
    test_batches = pipeline.make_pipeline(dataset.split("test"), size, BATCH_SIZE)
    recipes = {
        "pretrained": lambda seed: pretrained_run(
            dataset, seed, size, args.frozen_epochs, args.fine_tune_epochs, args.fine_tune_rate
        ),
        "scratch": lambda seed: scratch_run(dataset, seed, size, args.scratch_epochs),
    }
    names = " ".join(f"{name:>10s}" for name in classes.names)
    print(f"{'recipe':10s} {'seed':>4s} {'seconds':>8s} {'mean IoU':>9s} {names}")
    results: dict[str, list[tuple[float, float]]] = {}
    for name in args.recipes:
        for seed in args.seeds:
            started = time.perf_counter()
            model = recipes[name](seed)
            seconds = time.perf_counter() - started
            confusion = training.confusion_on(model, test_batches, classes)
            per_class = metrics.iou_per_class(confusion)
            score = metrics.mean_iou(confusion)
            results.setdefault(name, []).append((score, seconds))
            ious = " ".join(f"{value:10.3f}" for value in per_class)
            print(f"{name:10s} {seed:4d} {seconds:8.0f} {score:9.3f} {ious}", flush=True)
    for shift, ious in shifted_truth_ious(test_batches, classes.num_classes).items():
        values = " ".join(f"{value:10.3f}" for value in ious)
        print(f"{'truth+' + str(shift) + 'px':10s} {'':>4s} {'':>8s} {np.mean(ious):9.3f} {values}")
    for name, runs in results.items():
        worst_score, slowest = min(score for score, _ in runs), max(s for _, s in runs)
        print(
            f"{name}: worst test mean IoU {worst_score:.3f} (goal {TARGET}), slowest run "
            f"{slowest:.0f} s (budget {BUDGET_SECONDS:.0f} s): "
            + ("met" if worst_score >= TARGET and slowest <= BUDGET_SECONDS else "not met")
        )


if __name__ == "__main__":
    main()
