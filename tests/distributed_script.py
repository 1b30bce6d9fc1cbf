"""Runs one distributed job in a fresh process, for tests/test_distribute.py.

A strategy must exist before TensorFlow starts (logical devices, the multi-worker cluster), so
each job gets its own process. Prints one line of JSON with what the test checks.

    python tests/distributed_script.py equivalence
    python tests/distributed_script.py train DATASET_ROOT RUN_DIR EPOCHS [--resume]
        (devices: split_cpu(2) unless TF_CONFIG names a cluster; then one worker of it, which
        the recipe refuses, see helpers.distribute.check_supported)
"""

from __future__ import annotations

import json
import os
import sys

from helpers import distribute, runtime

if not os.environ.get("TF_CONFIG"):
    distribute.split_cpu(2)

import keras  # after the devices are configured (split_cpu)
import numpy as np
import tensorflow as tf

from helpers import data, losses, models, training

CLASSES, SIZE, BATCH = 3, 32, 8
TINY = training.TrainConfig(
    image_size=SIZE, batch_size=4, epochs=2, learning_rate=1e-2, base_filters=4, min_steps=0
)


def one_sgd_step(strategy, images: np.ndarray, masks: np.ndarray) -> tuple[float, list]:
    """Loss and gradient of the recipe's U-Net and loss at its seeded start, under
    ``strategy``: one step of plain SGD with learning rate 1 moves each weight by -gradient."""
    with strategy.scope():
        keras.utils.set_random_seed(7)
        model = models.unet(CLASSES, image_size=SIZE, base_filters=4)
        model.compile(
            optimizer=keras.optimizers.SGD(1.0), loss=losses.CrossEntropyDiceLoss(CLASSES)
        )
    before = [w.numpy() for w in model.trainable_weights]
    # fit, as the recipe: it splits each batch between the replicas (train_on_batch would give
    # every replica the whole batch)
    batch = tf.data.Dataset.from_tensor_slices((images, masks)).batch(len(images))
    loss = model.fit(batch, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    after = [w.numpy() for w in model.trainable_weights]
    return loss, [b - a for b, a in zip(before, after, strict=True)]


def equivalence() -> dict:
    """Mirrored over two logical CPUs against one device, on the same global batch."""
    runtime.seed_everything(0)
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32)
    masks = rng.integers(0, CLASSES, (BATCH, SIZE, SIZE)).astype("int32")
    mirrored = distribute.choose_strategy()
    one = tf.distribute.OneDeviceStrategy("/CPU:0")
    loss_2, grads_2 = one_sgd_step(mirrored, images, masks)
    halves = [one_sgd_step(one, images[i : i + 4], masks[i : i + 4]) for i in (0, 4)]
    loss_halves = float(np.mean([loss for loss, _ in halves]))
    grads_halves = [np.mean(pair, axis=0) for pair in zip(*(g for _, g in halves), strict=True)]
    loss_whole, grads_whole = one_sgd_step(one, images, masks)
    return {
        "strategy": distribute.describe(mirrored),
        "loss_mirrored": loss_2,
        "loss_mean_of_halves": loss_halves,
        "loss_whole_batch": loss_whole,
        "max_grad_diff_halves": max(
            float(np.abs(a - b).max()) for a, b in zip(grads_2, grads_halves, strict=True)
        ),
        "max_grad_diff_whole": max(
            float(np.abs(a - b).max()) for a, b in zip(grads_2, grads_whole, strict=True)
        ),
        "max_grad": max(float(np.abs(g).max()) for g in grads_2),
    }


def train(root: str, run_dir: str, epochs: int, resume: bool) -> dict:
    """The recipe under the strategy this process's devices or TF_CONFIG give."""
    strategy = distribute.choose_strategy()
    config = training.dataclasses.replace(TINY, epochs=epochs)
    _, history = training.train(
        data.load_dataset(root),
        config,
        run_dir=run_dir,
        resume=resume,
        verbose=0,
        strategy=strategy,
    )
    return {
        "strategy": distribute.describe(strategy),
        "epochs_run": len(history["loss"]),
        "val_mean_iou": history["val_mean_iou"][-1],
    }


if __name__ == "__main__":
    if sys.argv[1] == "equivalence":
        result = equivalence()
    else:
        root, run_dir, epochs = sys.argv[2], sys.argv[3], int(sys.argv[4])
        result = train(root, run_dir, epochs, "--resume" in sys.argv)
    print("RESULT " + json.dumps(result), flush=True)
