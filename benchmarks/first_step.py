"""Benchmark: the first ``fit`` of a U-Net, with Adam's variables built lazily or beforehand.

    python benchmarks/first_step.py [--repeats 2]

Keras creates the optimizer's slot variables inside the first trace of the training step when
the model was built outside a ``tf.distribute`` scope, and a ``tf.function`` that creates
variables is traced twice. ``training.compile_for_segmentation`` builds them first
(``training.build_optimizer``). For each way, side by side and alternating, this prints the
seconds of a first one-epoch ``fit`` (tracing included) of the recipe's U-Net on 4 batches,
and checks that both train the same weights to the bit.
"""

from __future__ import annotations

import argparse
import time

import helpers  # noqa: F401 (first: imports TensorFlow quietly)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from helpers import models, runtime, training

WAYS = ("lazy (Keras' default)", "built before fit")


def first_fit(prebuilt: bool, image_size: int, seed: int) -> tuple[float, list[np.ndarray]]:
    """Seconds of a fresh U-Net's first ``fit`` and the weights it trained."""
    runtime.seed_everything(seed)
    model = models.unet(4, image_size=image_size)
    training.compile_for_segmentation(model, 4, 255, 3e-3)  # builds Adam's variables
    if not prebuilt:
        model.optimizer = keras.optimizers.Adam(3e-3)  # unbuilt: fit builds it in its trace
    rng = np.random.default_rng(seed)
    images = rng.random((32, image_size, image_size, 3), np.float32)
    masks = rng.integers(0, 4, (32, image_size, image_size)).astype(np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(8)
    start = time.perf_counter()
    model.fit(batches, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start, [weight.numpy() for weight in model.weights]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(runtime.device_report())
    seconds = {way: [] for way in WAYS}
    weights = {}
    for _ in range(args.repeats):
        for way in WAYS:
            took, weights[way] = first_fit(way == WAYS[1], args.image_size, args.seed)
            seconds[way].append(took)
    for way in WAYS:
        runs = ", ".join(f"{s:.1f}" for s in seconds[way])
        print(f"{way:<22} first fit: best {min(seconds[way]):5.1f} s  (runs: {runs})")
    ratio = min(seconds[WAYS[0]]) / min(seconds[WAYS[1]])
    print(f"lazy / built: x{ratio:.2f}")
    same = all(np.array_equal(a, b) for a, b in zip(*weights.values(), strict=True))
    print(f"same weights to the bit: {same}")


if __name__ == "__main__":
    main()
