"""helpers.metrics: hand-computed cases, Keras agreement, streaming, properties, bad inputs."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.metrics import (
    StreamingConfusionMatrix,
    class_accuracy,
    confusion_matrix,
    confusion_matrix_from_batches,
    dice_per_class,
    frequency_weighted_iou,
    iou_per_class,
    mean_iou,
    metrics_table,
    pixel_accuracy,
)

# A 4x4 mask with 3 classes and a prediction with two mistakes:
# one class-0 pixel predicted as 1, one class-2 pixel predicted as 0.
TRUE = np.array(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 2, 2],
        [2, 2, 2, 2],
    ]
)
PRED = np.array(
    [
        [0, 1, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 0, 2],
        [2, 2, 2, 2],
    ]
)
# Rows = true class, columns = predicted class.
EXPECTED_CM = np.array(
    [
        [3, 1, 0],
        [0, 4, 0],
        [1, 0, 7],
    ]
)


def random_labels(seed: int, shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_classes, size=shape)


def test_confusion_matrix_hand_computed() -> None:
    cm = confusion_matrix(TRUE, PRED, num_classes=3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, EXPECTED_CM)


def test_metrics_hand_computed() -> None:
    cm = EXPECTED_CM
    # 14 of 16 pixels are right.
    assert pixel_accuracy(cm) == pytest.approx(14 / 16)
    # Recall: 3 of 4 class-0 pixels, 4 of 4 class-1, 7 of 8 class-2.
    np.testing.assert_allclose(class_accuracy(cm), [3 / 4, 4 / 4, 7 / 8])
    # IoU = TP / (TP + FP + FN): class 0: 3 / (3 + 1 + 1); class 1: 4 / (4 + 1 + 0);
    # class 2: 7 / (7 + 0 + 1).
    np.testing.assert_allclose(iou_per_class(cm), [0.6, 0.8, 0.875])
    assert mean_iou(cm) == pytest.approx((0.6 + 0.8 + 0.875) / 3)
    # Dice = 2TP / (2TP + FP + FN): 6/8, 8/9, 14/15.
    np.testing.assert_allclose(dice_per_class(cm), [6 / 8, 8 / 9, 14 / 15])
    # Frequency weights 4/16, 4/16, 8/16.
    assert frequency_weighted_iou(cm) == pytest.approx(0.25 * 0.6 + 0.25 * 0.8 + 0.5 * 0.875)


def test_ignore_index_pixels_count_nowhere() -> None:
    # Add a row of ignored pixels whose predictions are all wrong: nothing changes.
    true = np.vstack([TRUE, np.full((1, 4), 255)])
    pred = np.vstack([PRED, [[0, 1, 2, 1]]])
    cm = confusion_matrix(true.astype(np.uint8), pred, num_classes=3, ignore_index=255)
    np.testing.assert_array_equal(cm, EXPECTED_CM)


def test_ignore_index_may_be_any_prediction_value() -> None:
    # A prediction outside the classes is fine where the truth is ignored.
    cm = confusion_matrix([255, 1], [7, 1], num_classes=2, ignore_index=255)
    np.testing.assert_array_equal(cm, [[0, 0], [0, 1]])


def test_class_absent_from_truth_and_prediction_is_nan_and_excluded() -> None:
    cm = confusion_matrix(TRUE, PRED, num_classes=4)  # class 3 appears nowhere
    assert cm.shape == (4, 4)
    for per_class in (iou_per_class(cm), dice_per_class(cm), class_accuracy(cm)):
        assert np.isnan(per_class[3])
        assert not np.isnan(per_class[:3]).any()
    assert mean_iou(cm) == pytest.approx(mean_iou(EXPECTED_CM))
    assert pixel_accuracy(cm) == pytest.approx(14 / 16)
    assert frequency_weighted_iou(cm) == pytest.approx(frequency_weighted_iou(EXPECTED_CM))


def test_class_predicted_but_never_true_counts_with_iou_zero() -> None:
    cm = confusion_matrix([0, 0, 1, 1], [0, 2, 1, 1], num_classes=3)
    assert np.isnan(class_accuracy(cm)[2])  # no true pixels: recall undefined
    np.testing.assert_allclose(iou_per_class(cm), [0.5, 1.0, 0.0])
    assert mean_iou(cm) == pytest.approx(0.5)


def test_empty_matrix_gives_nan_without_warnings() -> None:
    cm = np.zeros((3, 3), dtype=np.int64)
    with np.errstate(all="raise"):
        assert math.isnan(pixel_accuracy(cm))
        assert math.isnan(mean_iou(cm))
        assert math.isnan(frequency_weighted_iou(cm))
        assert np.isnan(iou_per_class(cm)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_iou_agrees_with_keras(seed: int) -> None:
    num_classes = 5
    true = random_labels(seed, (4, 16, 16), num_classes)
    pred = random_labels(seed + 100, (4, 16, 16), num_classes)
    if seed == 2:  # make class 4 absent from both: Keras excludes it from the mean too
        true[true == 4] = 0
        pred[pred == 4] = 1
    cm = confusion_matrix(true, pred, num_classes)

    keras_mean = keras.metrics.MeanIoU(num_classes=num_classes)
    keras_mean.update_state(true, pred)
    assert mean_iou(cm) == pytest.approx(float(keras_mean.result()), abs=1e-6)

    ious = iou_per_class(cm)
    for class_id in range(num_classes):
        keras_iou = keras.metrics.IoU(num_classes=num_classes, target_class_ids=[class_id])
        keras_iou.update_state(true, pred)
        if np.isnan(ious[class_id]):
            assert float(keras_iou.result()) == 0.0  # Keras reports 0 for an undefined IoU
        else:
            assert ious[class_id] == pytest.approx(float(keras_iou.result()), abs=1e-6)


def test_ignore_index_agrees_with_keras_ignore_class() -> None:
    num_classes = 4
    true = random_labels(3, (2, 12, 12), num_classes + 1)
    true[true == num_classes] = 255
    pred = random_labels(4, (2, 12, 12), num_classes)
    cm = confusion_matrix(true, pred, num_classes, ignore_index=255)
    keras_mean = keras.metrics.MeanIoU(num_classes=num_classes, ignore_class=255)
    keras_mean.update_state(true, pred)
    assert mean_iou(cm) == pytest.approx(float(keras_mean.result()), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_dice_is_two_iou_over_one_plus_iou(seed: int) -> None:
    cm = confusion_matrix(random_labels(seed, (64,), 4), random_labels(seed + 7, (64,), 4), 4)
    iou = iou_per_class(cm)
    np.testing.assert_allclose(dice_per_class(cm), 2 * iou / (1 + iou))


def test_streaming_over_batches_equals_one_big_matrix() -> None:
    true = random_labels(5, (6, 8, 8), 3)
    pred = random_labels(6, (6, 8, 8), 3)
    true[0, 0, :] = 255
    whole = confusion_matrix(true, pred, 3, ignore_index=255)

    streaming = StreamingConfusionMatrix(3, ignore_index=255)
    for start in range(0, 6, 2):
        streaming.update(true[start : start + 2], pred[start : start + 2])
    np.testing.assert_array_equal(streaming.matrix, whole)

    batches = ((true[i : i + 4], pred[i : i + 4]) for i in range(0, 6, 4))  # a generator
    np.testing.assert_array_equal(confusion_matrix_from_batches(batches, 3, 255), whole)

    streaming.reset()
    assert streaming.matrix.sum() == 0


def test_matrix_property_is_a_copy() -> None:
    streaming = StreamingConfusionMatrix(2)
    streaming.update([0, 1], [0, 1])
    streaming.matrix[0, 0] = 99
    np.testing.assert_array_equal(streaming.matrix, np.eye(2))


def test_from_batches_accepts_tensors_from_tf_data() -> None:
    true = random_labels(8, (5, 4, 4), 3).astype(np.int32)
    logits = np.random.default_rng(9).normal(size=(5, 4, 4, 3)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((true, logits)).batch(2)
    batches = ((mask, tf.argmax(batch_logits, axis=-1)) for mask, batch_logits in dataset)
    cm = confusion_matrix_from_batches(batches, num_classes=3)
    np.testing.assert_array_equal(cm, confusion_matrix(true, logits.argmax(axis=-1), 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perfect_prediction(seed: int) -> None:
    true = random_labels(seed, (3, 10, 10), 4)
    cm = confusion_matrix(true, true, 4)
    assert pixel_accuracy(cm) == 1.0
    assert mean_iou(cm) == 1.0
    np.testing.assert_array_equal(cm, np.diag(np.bincount(true.ravel(), minlength=4)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_permuted_labels(seed: int) -> None:
    num_classes = 5
    rng = np.random.default_rng(seed)
    permutation = rng.permutation(num_classes)
    true = np.repeat(np.arange(num_classes), 6)  # 6 pixels of every class
    rng.shuffle(true)
    cm = confusion_matrix(true, permutation[true], num_classes)
    # Class i is always predicted as permutation[i]: row i of the identity, moved.
    np.testing.assert_array_equal(cm, 6 * np.eye(num_classes, dtype=np.int64)[permutation])
    fixed = permutation == np.arange(num_classes)
    np.testing.assert_array_equal(iou_per_class(cm), np.where(fixed, 1.0, 0.0))
    assert pixel_accuracy(cm) == pytest.approx(fixed.mean())


def test_accepts_bools_and_whole_floats() -> None:
    cm = confusion_matrix(np.array([True, False]), np.array([1.0, 0.0]), num_classes=2)
    np.testing.assert_array_equal(cm, np.eye(2))


def test_metrics_table() -> None:
    table = metrics_table(EXPECTED_CM, ["background", "a", "b"])
    assert list(table) == ["background", "a", "b", "mean"]
    assert table["a"] == {"iou": 0.8, "dice": pytest.approx(8 / 9), "accuracy": 1.0, "pixels": 4}
    assert table["mean"]["iou"] == pytest.approx(mean_iou(EXPECTED_CM))
    assert table["mean"]["pixels"] == 16


@pytest.mark.parametrize(
    ("true", "pred", "match"),
    [
        ([0, 1, 3], [0, 1, 1], r"y_true has values outside 0\.\.2: 3\. Fix"),
        ([0, 1, 2], [-1, 1, 5], r"y_pred has values outside 0\.\.2: -1, 5\. Fix"),
        ([0, 1, 255], [0, 1, 255], r"y_true has values outside 0\.\.2: 255"),
        ([0, 1], [0, 1, 2], r"shape \(2,\) but y_pred has \(3,\)\. Fix"),
        ([[0, 1]], np.zeros((1, 2, 3)), r"argmax over its last axis"),
        ([0, 1], [0.2, 0.8], r"y_pred must hold integer class ids.*argmax"),
    ],
)
def test_bad_inputs_raise_with_the_fix(true: object, pred: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        confusion_matrix(true, pred, num_classes=3)


def test_many_bad_values_are_summarised() -> None:
    with pytest.raises(ValueError, match=r"9, 10, 11, 12 and 12 more\. Fix"):
        confusion_matrix(np.arange(25), np.zeros(25, dtype=int), num_classes=3)


def test_prediction_equal_to_ignore_index_raises() -> None:
    with pytest.raises(ValueError, match=r"y_pred has values outside 0\.\.2: 255"):
        confusion_matrix([0, 1], [0, 255], num_classes=3, ignore_index=255)


@pytest.mark.parametrize("num_classes", [0, -2, 2.5])
def test_bad_num_classes_raise(num_classes: object) -> None:
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        confusion_matrix([0], [0], num_classes=num_classes)  # type: ignore[arg-type]


def test_metrics_table_rejects_wrong_names() -> None:
    with pytest.raises(ValueError, match="Expected 3 class names"):
        metrics_table(EXPECTED_CM, ["background", "a"])
    with pytest.raises(ValueError, match="none of them 'mean'"):
        metrics_table(EXPECTED_CM, ["background", "mean", "b"])
