"""Every exercise's self-check accepts its solution and rejects a wrong answer (issue 13).

Each test takes an exercise's answer cell and self-check cell from the notebook itself, so it
follows the notebook, and runs them in a small namespace built here: tiny arrays, tiny untrained
models, and stand-ins for what a notebook computes at length (trained models, training results).
No notebook is executed and nothing is trained. A self-check weakened until it accepts anything
fails its test: every wrong answer below must raise ``AssertionError``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from notebook_cells import cell_defining, code_cells, run

from helpers import (
    calibration,
    data,
    distribute,
    exercises,
    losses,
    metrics,
    models,
    perf,
    pipeline,
    shapes,
    tiling,
    training,
)

EXERCISES = {
    "01_preprocessing": 3,
    "02_softmax": 3,
    "03_build_and_train": 3,
    "04_evaluation": 3,
    "05_troubleshooting_slow_training": 3,
    "06_hard_cases": 3,
    "07_transfer_learning_and_your_photos": 3,
    "08_scaling_out": 3,
}
SELF_CHECK = "# self-check"


def exercise_cells(notebook: str, number: int) -> tuple[str, str]:
    """The answer cell and the self-check cell of exercise ``number`` (1-based)."""
    cells = code_cells(notebook)
    checks = [index for index, source in enumerate(cells) if source.startswith(SELF_CHECK)]
    index = checks[number - 1]
    return cells[index - 1], cells[index]


def assert_exercise(
    notebook: str,
    number: int,
    namespace: dict,
    answer: str,
    right: object,
    wrongs: list[object],
) -> None:
    """Unanswered: the check asks for the answer. Right: it passes. Each wrong: AssertionError.

    ``right`` and each of ``wrongs`` is the value of ``answer``, or a dict of several variables.
    """
    answer_cell, check_cell = exercise_cells(notebook, number)
    base = dict(namespace)
    run(answer_cell, base)
    assert base[answer] is None, "the answer cell should leave the answer empty"
    unanswered = run(check_cell, dict(base))
    assert unanswered == f"Fill in {answer} above, then run this cell again.\n"

    def answered(value: object) -> dict:
        return {**base, **(value if isinstance(value, dict) else {answer: value})}

    run(check_cell, answered(right))
    for wrong in wrongs:
        with pytest.raises(AssertionError):
            run(check_cell, answered(wrong))


def test_every_notebook_has_its_self_checks():
    for notebook, count in EXERCISES.items():
        checks = [source for source in code_cells(notebook) if source.startswith(SELF_CHECK)]
        assert len(checks) == count, notebook


# --- tiny stand-ins ---------------------------------------------------------------------------

THREE_CLASSES = data.Classes(
    names=("background", "circle", "star"),
    colors=((0, 0, 0), (255, 0, 0), (255, 255, 0)),
    ignore_index=255,
)


class FixedPredictions:
    """A stand-in for a trained model: logits whose argmax is ``predicted`` for any input."""

    def __init__(self, predicted: np.ndarray, num_classes: int) -> None:
        self.logits = 5.0 * np.eye(num_classes, dtype=np.float32)[predicted]

    def __call__(self, images: object, training: bool = False) -> np.ndarray:
        return self.logits[: len(images)]


class RowDependentModel:
    """A stand-in model whose logits depend on colour and on the row: flipping rows changes them."""

    def __call__(self, images: object, training: bool = False) -> np.ndarray:
        images = np.asarray(images)
        rows = np.linspace(-2.0, 2.0, images.shape[1])[None, :, None, None]
        return (4.0 * images + rows * np.array([1.0, 0.0, -1.0])).astype(np.float32)


def tiny_unet(skip_connections: bool = True, trained: bool = True) -> keras.Model:
    """A 16x16 U-Net; 'trained' means compiled with an optimizer that has taken steps."""
    model = models.unet(3, image_size=16, base_filters=2, skip_connections=skip_connections)
    if trained:
        training.compile_for_segmentation(model, 3, 255, 1e-3)
        model.optimizer.iterations.assign(3)
    return model


def assert_differ(*values: float) -> None:
    """Guard: the wrong answers of a test really differ from the right one."""
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1 :]) > 1e-3


# --- 01 preprocessing -------------------------------------------------------------------------


def test_01_exercise_1_background_share_of_val(monkeypatch):
    counts = {"val": np.array([600, 200, 100, 60, 40]), "train": np.array([750, 100, 80, 50, 20])}
    monkeypatch.setattr(exercises, "class_pixel_counts", lambda pairs, n: counts[pairs[0]])
    namespace = {
        "exercises": exercises,
        "dataset": SimpleNamespace(
            split=lambda name: [name], classes=SimpleNamespace(num_classes=5)
        ),
    }
    assert_exercise(
        "01_preprocessing", 1, namespace, "background_share_val", 0.6, wrongs=[0.75, 0.4, 0.5]
    )


def augmented(decoded: tf.data.Dataset) -> tf.data.Dataset:
    seeds = tf.data.Dataset.random(seed=3, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(decoded, seeds).map(
        lambda pair, seed: pipeline.augment_pair(*pair, seed)
    )


def test_01_exercise_2_cache_after_augmentation_freezes_it():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(6, 16, 16, 3)).astype(np.float32)
    masks = rng.integers(0, 3, size=(6, 16, 16)).astype(np.int32)
    decoded = tf.data.Dataset.from_tensor_slices((images, masks))
    namespace = {"np": np, "decoded": decoded, "train_pairs": list(range(6))}
    assert_exercise(
        "01_preprocessing",
        2,
        namespace,
        "frozen_augmentation",
        right=augmented(decoded).cache().batch(4),
        wrongs=[
            augmented(decoded.cache()).batch(4),  # the right order: augmentation runs every epoch
            augmented(decoded).batch(4),  # no cache: a new augmentation every epoch
            decoded.cache().batch(4),  # frozen, but not augmented at all
            augmented(decoded).cache().take(1).batch(4),  # not the whole split
        ],
    )


def test_01_exercise_3_rounded_bilinear_mask():
    mask = np.zeros((8, 8), np.uint8)
    mask[1:6, 1:5] = 1
    mask[3:8, 4:8] = 3
    size = (4, 4)
    bilinear = tf.image.resize(
        mask[None, ..., None].astype(np.float32), size, method="bilinear", antialias=True
    )[0, ..., 0].numpy()
    right = int(np.sum(np.round(bilinear) != pipeline.resize_mask(mask, size).numpy()))
    fractional = int(np.sum(bilinear != np.round(bilinear)))
    assert_differ(right, fractional, 0)
    namespace = {"exercises": exercises, "mask": mask, "size": size, "bilinear": bilinear}
    assert_exercise(
        "01_preprocessing", 3, namespace, "wrong_after_rounding", right, [right + 1, fractional, 0]
    )


# --- 02 softmax -------------------------------------------------------------------------------


def test_02_exercise_1_binary_cross_entropy_from_logits():
    def solution(z, y):
        return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))

    def flipped_labels(z, y):
        return np.maximum(z, 0) - z * (1 - y) + np.log1p(np.exp(-np.abs(z)))

    def softplus_only(z, y):
        return np.log1p(np.exp(-np.abs(z)))

    assert_exercise(
        "02_softmax",
        1,
        {"np": np, "tf": tf},
        "bce_from_logits",
        solution,
        [flipped_labels, softplus_only],
    )


def test_02_exercise_2_class_axis_of_channels_first_logits():
    logits = np.random.default_rng(0).normal(size=(2, 6, 7, 3)).astype(np.float32)
    namespace = {
        "keras": keras,
        "np": np,
        "logits": logits,
        "probabilities": keras.ops.softmax(logits, axis=-1),
    }
    assert_exercise("02_softmax", 2, namespace, "class_axis", 1, [-1, 0, 2, 3])
    assert_exercise("02_softmax", 2, namespace, "class_axis", -3, [-2])


def test_02_exercise_3_cross_entropy_with_an_ignored_pixel():
    namespace = {"np": np, "keras": keras}
    answer_cell, _ = exercise_cells("02_softmax", 3)
    arrays = dict(namespace)
    run(answer_cell, arrays)
    logits, mask = arrays["exercise_logits"], arrays["exercise_mask"]
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    valid = mask != 255
    per_pixel = -np.take_along_axis(log_p, np.where(valid, mask, 0)[..., None], -1)[..., 0]
    right = float(per_pixel[valid].mean())
    over_all_four = float(per_pixel.mean())  # the ignored pixel counted as class 0
    assert_differ(right, over_all_four)
    assert_exercise("02_softmax", 3, namespace, "loss_2x2", right, [over_all_four, right + 0.01])


# --- 03 build and train -----------------------------------------------------------------------


def test_03_exercise_1_unet_without_skips():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 16, 16, 3)).astype(np.float32)
    masks = rng.integers(0, 3, size=(4, 16, 16)).astype(np.int32)
    val_batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(2)
    namespace = {
        "keras": keras,
        "metrics": metrics,
        "training": training,
        "classes": THREE_CLASSES,
        "val_batches": val_batches,
        "results": {"U-Net": np.diag([50, 20, 10])},
    }

    def measured(model: keras.Model) -> float:
        return metrics.mean_iou(training.confusion_on(model, val_batches, THREE_CLASSES))

    no_skips, with_skips, untrained = tiny_unet(False), tiny_unet(True), tiny_unet(False, False)
    right = measured(no_skips)
    assert_exercise(
        "03_build_and_train",
        1,
        namespace,
        "no_skip_mean_iou",
        {"no_skip_unet": no_skips, "no_skip_mean_iou": right},
        wrongs=[
            {"no_skip_unet": no_skips, "no_skip_mean_iou": right + 0.05},
            {"no_skip_unet": no_skips, "no_skip_mean_iou": 0.924},
            {"no_skip_unet": with_skips, "no_skip_mean_iou": measured(with_skips)},
            {"no_skip_unet": untrained, "no_skip_mean_iou": measured(untrained)},
            {"no_skip_unet": None, "no_skip_mean_iou": right},
        ],
    )


def test_03_exercise_2_fcn_output_stride():
    namespace = {
        "fcn": models.fcn(3, image_size=64, base_filters=2),
        "config": SimpleNamespace(image_size=64),
    }
    assert_exercise("03_build_and_train", 2, namespace, "fcn_output_stride", 8, [4, 16, 3, 64])


def test_03_exercise_3_the_wider_view():
    keras.utils.set_random_seed(0)
    namespace = {
        "np": np,
        "tf": tf,
        "keras": keras,
        "fcn": models.fcn(3, image_size=32),
        "unet": models.unet(3, image_size=32),
        "val_images": np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32),
    }
    assert_exercise("03_build_and_train", 3, namespace, "wider_view", "U-Net", ["FCN", "unet"])


# --- 04 evaluation ----------------------------------------------------------------------------


def test_04_exercise_1_iou_by_hand():
    namespace = {"np": np, "metrics": metrics}
    assert_exercise("04_evaluation", 1, namespace, "iou_class_1", 4 / 6, [0.67, 4 / 5, 0.5, 1.0])


def test_04_exercise_2_least_precise_class():
    # precision (columns): 50/60, 20/21, 30/31; recall (rows): 50/52, 20/30, 30/30
    val_cm = np.array([[50, 1, 1], [10, 20, 0], [0, 0, 30]])
    namespace = {"exercises": exercises, "val_cm": val_cm, "classes": THREE_CLASSES}
    assert_exercise(
        "04_evaluation", 2, namespace, "least_precise_class", "background", ["circle", "star"]
    )


def test_04_exercise_3_vertical_flip_tta():
    rng = np.random.default_rng(0)
    val_images = rng.uniform(size=(4, 8, 8, 3)).astype(np.float32)
    val_masks = rng.integers(0, 3, size=(4, 8, 8)).astype(np.int32)
    model = RowDependentModel()
    val_probabilities = calibration.predict_probabilities(model, val_images)

    def mean_iou_of(probabilities: np.ndarray) -> float:
        predicted = probabilities.argmax(axis=-1)
        return metrics.mean_iou(metrics.confusion_matrix(val_masks, predicted, 3, 255))

    upside_down = calibration.predict_probabilities(model, val_images[:, ::-1])[:, ::-1]
    right = mean_iou_of((val_probabilities + upside_down) / 2)
    no_tta = mean_iou_of(val_probabilities)
    horizontal = mean_iou_of(calibration.predict_probabilities(model, val_images, flip_tta=True))
    assert_differ(right, no_tta)
    assert_differ(right, horizontal)
    namespace = {
        "exercises": exercises,
        "metrics": metrics,
        "model": model,
        "classes": THREE_CLASSES,
        "val_images": val_images,
        "val_masks": val_masks,
        "val_probabilities": val_probabilities,
        "val_cm": metrics.confusion_matrix(val_masks, val_probabilities.argmax(axis=-1), 3, 255),
    }
    assert_exercise(
        "04_evaluation",
        3,
        namespace,
        "vertical_tta_mean_iou",
        right,
        [no_tta, horizontal, right + 0.01],
    )


# --- 06 hard cases ----------------------------------------------------------------------------


# --- 05 troubleshooting slow training ---------------------------------------------------------


def budget_run(name: str, curve: tuple[float, ...]) -> perf.BudgetRun:
    """A stand-in for a short training run with the validation mean IoU ``curve``."""
    return perf.BudgetRun(
        name=name,
        epochs=len(curve),
        train_seconds=10.0,
        images_per_second=30.0,
        target=0.35,
        seconds_to_target=None,
        epochs_to_target=None,
        val_mean_iou=curve,
        seconds_at_epoch=tuple(float(epoch) for epoch in range(1, len(curve) + 1)),
    )


def test_05_exercise_1_batch_32_with_a_scaled_learning_rate():
    default_rate = budget_run("batch 32", (0.10, 0.20, 0.26))
    namespace = {"perf": perf, "dataclasses": __import__("dataclasses")}
    namespace["runs"] = {"batch 32": default_rate}
    scaled = budget_run("scaled", (0.15, 0.30, 0.41))
    assert_exercise(
        "05_troubleshooting_slow_training",
        1,
        namespace,
        "scaled_run",
        scaled,
        [0.41, default_rate, budget_run("too short", (0.15, 0.30))],
    )


def test_05_exercise_2_deeper_unet_flops_ratio():
    model = models.unet(3, image_size=32, base_filters=2)
    deeper = models.unet(3, image_size=32, base_filters=2, depth=4)
    right = perf.training_step_flops(deeper, 16) / perf.training_step_flops(model, 16)
    assert 1.1 < right < 1.5
    namespace = {"perf": perf, "model": model, "deeper": deeper, "keras": keras, "math": math}
    run(cell_defining("05_troubleshooting_slow_training", "def forward_flops("), namespace)
    for unet in (model, deeper):  # the lesson's count is the helper's
        assert namespace["forward_flops"](unet) == perf.forward_flops_by_layer(unet)
    assert_exercise(
        "05_troubleshooting_slow_training",
        2,
        namespace,
        "deep_flops_ratio",
        round(right, 2),
        [1.0, 2.0, 4 / 3 * 1.2, right * 0.85],
    )


def test_05_exercise_3_noise_of_three_seeds():
    first, second = budget_run("seed 42", (0.30, 0.47)), budget_run("seed 43", (0.25, 0.38))
    third = budget_run("seed 44", (0.28, 0.43))
    remedies = {"baseline": first, "more layers": budget_run("more layers", (0.3, 0.45))}
    namespace = {
        "perf": perf,
        "runs": {"batch 8": first, "batch 8, seed 43": second},
        "baseline": "batch 8",
        "reseeded": "batch 8, seed 43",
        "remedies": remedies,
        "base": first,
        "remedy_names": ["more layers"],
    }
    right = {"third_run": third, "seed_noise": 0.47 - 0.38}
    assert_exercise(
        "05_troubleshooting_slow_training",
        3,
        namespace,
        "seed_noise",
        right,
        [
            {"third_run": third, "seed_noise": 0.47 - 0.43},  # not the largest difference
            {"third_run": third, "seed_noise": 0.5},
            {"third_run": first, "seed_noise": 0.47 - 0.38},  # the first seed again
            {"third_run": None, "seed_noise": 0.47 - 0.38},
        ],
    )


def test_06_exercise_1_tiles_per_image():
    side, tile, overlap = 64, 24, 8
    right = len(tiling.tile_starts(side, tile, overlap)) ** 2
    plain = len(tiling.tile_starts(side, tile, 0)) ** 2
    assert_differ(right, plain)
    namespace = {"exercises": exercises, "side": side, "TILE": tile, "OVERLAP": overlap}
    assert_exercise(
        "06_hard_cases", 1, namespace, "tiles_per_image", right, [plain, int(np.sqrt(right))]
    )


def test_06_exercise_2_focal_factor():
    namespace = {"np": np, "losses": losses}
    assert_exercise("06_hard_cases", 2, namespace, "focal_factor", 0.01, [0.1, 0.9, 0.99, 100])


def test_06_exercise_3_reseeded_rare_iou():
    masks = np.zeros((2, 4, 4), np.int32)
    masks[0, :2, :2] = 2  # four star pixels
    masks[1, 2:, 2:] = 1
    predicted = masks.copy()
    predicted[0, 0, :2] = 0  # two of the star's pixels missed ...
    predicted[0, 3, 3] = 2  # ... and one background pixel called star: IoU 2 / 5
    test_batches = [(np.zeros((2, 4, 4, 3), np.float32), masks)]
    reseeded = FixedPredictions(predicted, 3)
    namespace: dict[str, object] = {
        "np": np,
        "metrics": metrics,
        "training": training,
        "classes": THREE_CLASSES,
        "test_batches": test_batches,
        "rare": 2,
        "SEED": 42,
        "rare_iou": {"cross-entropy": 0.0, "CE + class weights": 0.5},
        "trained": {
            "CE + class weights seed 7": reseeded,
            "cross-entropy seed 7": FixedPredictions(masks, 3),
        },
    }
    assert_exercise(
        "06_hard_cases",
        3,
        namespace,
        "reseeded_rare_iou",
        0.4,
        [0.5, 0.0, 1.0, 0.45, {"reseeded_rare_iou": 0.4, "trained": {}}],  # last: nothing trained
    )


# --- 07 transfer learning and your photos -----------------------------------------------------


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def test_07_exercise_1_where_the_weights_are():
    whole, frozen = tiny_unet(trained=False), tiny_unet(trained=False)
    models.set_trainable([frozen.get_layer(name) for name in models.encoder_layers(frozen)], False)
    share = (trainable_count(whole) - trainable_count(frozen)) / trainable_count(whole)
    assert 0 < share < 0.5  # the encoder holds a minority: the answer is False
    namespace = {"trainable_count": trainable_count, "scratch": (whole, []), "frozen": (frozen, [])}
    assert_exercise(
        "07_transfer_learning_and_your_photos", 1, namespace, "encoder_is_most", False, [True]
    )


def test_07_exercise_2_model_input():
    namespace = {"tiling": tiling, "IMAGE_SIZE": 64}
    assert_exercise(
        "07_transfer_learning_and_your_photos",
        2,
        namespace,
        "model_input",
        (64, 88),
        [(64, 85), (88, 64), (48, 64), (64, 64)],
    )


class ServedStandIn:
    """A stand-in for the reloaded SavedModel: one uint8 mask per image, at the image's size."""

    def serve(self, images: np.ndarray) -> dict:
        return {"mask": tf.zeros(np.shape(images)[:3], tf.uint8)}


def test_07_exercise_3_served_shape():
    namespace = {"np": np, "served": ServedStandIn()}
    assert_exercise(
        "07_transfer_learning_and_your_photos",
        3,
        namespace,
        "served_shape",
        (1, 100, 150),
        [(100, 150), (1, 64, 64), (1, 150, 100), (1, 100, 150, 3)],
    )


SCALING_OUT = {"np": np, "json": __import__("json"), "os": __import__("os"), "tf": tf}


@pytest.fixture(scope="module")
def scaling_out(tmp_path_factory) -> dict:
    """Notebook 08's namespace for its exercises: a tiny dataset, the one-device strategy, and
    the notebook's own ``distributed_batches``, ``build`` and ``with_synchronized_batchnorm``."""
    root = shapes.make_shapes(
        tmp_path_factory.mktemp("scaling") / "shapes",
        split_sizes={"train": 40, "val": 4, "test": 2},
        image_size=32,
    )
    dataset = data.load_dataset(root)
    namespace = {
        **SCALING_OUT,
        "dataclasses": __import__("dataclasses"),
        "math": __import__("math"),
        "keras": keras,
        "distribute": distribute,
        "losses": losses,
        "models": models,
        "training": training,
        "dataset": dataset,
        "classes": dataset.classes,
        "strategy": tf.distribute.get_strategy(),
        "baseline": training.TrainConfig(image_size=32, base_filters=4, min_steps=0),
        "images": np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32),
        "SEED": 0,
        "IMAGE_SIZE": 32,
        "BASE_FILTERS": 4,
    }
    for definition in ("def distributed_batches(", "def build("):
        run(cell_defining("08_scaling_out", definition), namespace)
    return namespace


def test_08_exercise_1_images_and_rate_of_one_step(scaling_out):
    """One replica here: 16 images at 3e-3 (the notebook's 2 replicas: 32 at 6e-3)."""
    assert_exercise(
        "08_scaling_out",
        1,
        scaling_out,
        "step_batch_and_rate",
        (16, 3e-3),
        [(32, 6e-3), (16, 6e-3), (8, 3e-3), (32, 3e-3)],
    )


def test_08_exercise_2_third_worker():
    workers = ["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"]
    task = {"type": "worker", "index": 2}
    wrongs = [
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 3}},
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 1}},
        {"cluster": {"worker": workers[2:]}, "task": {"type": "worker", "index": 0}},
        {"cluster": {"chief": workers}, "task": task},
        {"task": task},
    ]
    assert_exercise(  # a dict answer goes in as {name: value} (a dict means several variables)
        "08_scaling_out",
        2,
        SCALING_OUT,
        "third_worker",
        {"third_worker": {"cluster": {"worker": workers}, "task": task}},
        [{"third_worker": wrong} for wrong in wrongs],
    )
    assert "TF_CONFIG" not in __import__("os").environ  # the check leaves none behind


def test_08_exercise_3_synchronized_batchnorm_on_one_device(scaling_out):
    run(cell_defining("08_scaling_out", "def with_synchronized_batchnorm("), scaling_out)
    assert_exercise("08_scaling_out", 3, scaling_out, "synchronized_differs", False, [True])
