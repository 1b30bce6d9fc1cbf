"""helpers.metrics, per image and per region: hand-computed cases and Keras agreement."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.metrics import (
    best_single_label_masks,
    comparison_table,
    confusion_matrix,
    confusion_matrix_per_image,
    iou_by_size,
    mean_iou,
    per_image_mean_iou,
    region_scores,
)

# Two 2x3 images with classes 0..2. Image 0: one class-1 pixel of 2 predicted as 0.
# Image 1: all right except one background pixel predicted as class 2.
TRUE = np.array([[[0, 0, 0], [0, 1, 1]], [[0, 0, 2], [2, 2, 2]]])
PRED = np.array([[[0, 0, 0], [0, 0, 1]], [[0, 2, 2], [2, 2, 2]]])


def test_confusion_matrix_per_image_sums_to_the_batch_matrix() -> None:
    matrices = confusion_matrix_per_image(TRUE, PRED, 3)
    assert matrices.shape == (2, 3, 3) and matrices.dtype == np.int64
    np.testing.assert_array_equal(matrices[0], [[4, 0, 0], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(matrices[1], [[1, 0, 1], [0, 0, 0], [0, 0, 4]])
    np.testing.assert_array_equal(matrices.sum(axis=0), confusion_matrix(TRUE, PRED, 3))


def test_confusion_matrix_per_image_rejects_single_masks_and_logits() -> None:
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix_per_image(TRUE[0], PRED[0], 3)
    with pytest.raises(ValueError, match="argmax"):
        confusion_matrix_per_image(TRUE, np.zeros((2, 2, 3, 3)), 3)


def test_per_image_mean_iou_hand_computed() -> None:
    # Image 0: IoU background 4/5, class 1 1/2, class 2 absent -> (0.8 + 0.5) / 2.
    # Image 1: background 1/2, class 1 absent, class 2 4/5 -> (0.5 + 0.8) / 2.
    np.testing.assert_allclose(per_image_mean_iou(TRUE, PRED, 3), [0.65, 0.65])


@pytest.mark.parametrize("seed", [0, 1])
def test_per_image_mean_iou_agrees_with_keras(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 4, size=(3, 8, 8))
    pred = np.where(rng.random((3, 8, 8)) < 0.6, true, rng.integers(0, 4, size=(3, 8, 8)))
    true[0, :4] = 255
    ours = per_image_mean_iou(true, pred, 4, ignore_index=255)
    for index in range(3):
        metric = keras.metrics.MeanIoU(num_classes=4, ignore_class=255)
        metric.update_state(true[index], pred[index])
        assert ours[index] == pytest.approx(float(metric.result()), abs=1e-6)


def test_region_scores_hand_computed_and_agree_with_keras_iou() -> None:
    scores = region_scores(TRUE, PRED, 3)
    np.testing.assert_array_equal(scores.image, [0, 0, 1, 1])
    np.testing.assert_array_equal(scores.class_id, [0, 1, 0, 2])
    np.testing.assert_array_equal(scores.pixels, [4, 2, 2, 4])
    np.testing.assert_allclose(scores.iou, [0.8, 0.5, 0.5, 0.8])
    for image, class_id, iou in zip(scores.image, scores.class_id, scores.iou, strict=True):
        metric = keras.metrics.IoU(num_classes=3, target_class_ids=[int(class_id)])
        metric.update_state(TRUE[image], PRED[image])
        assert iou == pytest.approx(float(metric.result()), abs=1e-6)
    objects = region_scores(TRUE, PRED, 3, exclude=(0,))
    np.testing.assert_array_equal(objects.class_id, [1, 2])
    np.testing.assert_allclose(objects.iou, [0.5, 0.8])


def test_region_scores_skip_ignored_pixels() -> None:
    true = TRUE.copy()
    true[0, 1, 1] = 255  # the mispredicted class-1 pixel
    scores = region_scores(true, PRED, 3, ignore_index=255)
    np.testing.assert_array_equal(scores.pixels, [4, 1, 2, 4])
    np.testing.assert_allclose(scores.iou, [1.0, 1.0, 0.5, 0.8])


def test_iou_by_size_counts_each_region_once() -> None:
    counts, means = iou_by_size(
        [5, 50, 60, 500, 5000], [0.2, 0.5, 0.7, 0.9, 1.0], [0, 10, 100, 1000]
    )
    np.testing.assert_array_equal(counts, [1, 2, 1])
    np.testing.assert_allclose(means, [0.2, 0.6, 0.9])  # the 5000-pixel region is outside
    counts, means = iou_by_size([5], [0.3], [0, 10, 20])
    np.testing.assert_array_equal(counts, [1, 0])
    assert np.isnan(means[1]), "an empty bucket has no mean"
    with pytest.raises(ValueError, match="increasing"):
        iou_by_size([5], [0.3], [10, 10])


def test_best_single_label_masks_fill_each_image_with_its_majority() -> None:
    filled = best_single_label_masks(TRUE, 3)
    assert filled.dtype == np.uint8 and filled.shape == TRUE.shape
    assert (filled[0] == 0).all() and (filled[1] == 2).all()
    # Such a "classifier" never outlines anything: here its mean IoU is below the model's.
    assert mean_iou(confusion_matrix(TRUE, filled, 3)) < mean_iou(confusion_matrix(TRUE, PRED, 3))
    with_ignore = np.array([[255, 255, 1], [0, 0, 1]])
    assert (best_single_label_masks(with_ignore, 3, ignore_index=255) == 0).all()  # a 2-2 tie
    assert (best_single_label_masks(np.full((2, 2), 255), 3, ignore_index=255) == 0).all()
    with pytest.raises(ValueError, match="shape"):
        best_single_label_masks(np.array([1, 2]), 3)


def test_comparison_table_lines_up_models_and_classes() -> None:
    perfect = confusion_matrix(TRUE, TRUE, 3)
    matrices = {"perfect": perfect, "a model": confusion_matrix(TRUE, PRED, 3)}
    lines = comparison_table(matrices, ["bg", "one", "two"]).split("\n")
    assert lines[0].split() == ["model", "pixel", "acc.", "mean", "IoU", "bg", "one", "two"]
    assert lines[1].split() == ["perfect", "1.000", "1.000", "1.000", "1.000", "1.000"]
    # Pooled over both images: background 5/7, class 1 1/2, class 2 4/5; 10 of 12 pixels right.
    assert lines[2].split() == ["a", "model", "0.833", "0.671", "0.714", "0.500", "0.800"]
    assert len({len(line) for line in lines}) == 1, "columns line up"
    absent = comparison_table({"m": confusion_matrix([[0]], [[0]], 2)}, ["bg", "x"])
    assert absent.split("\n")[1].split()[-1] == "—"
    with pytest.raises(ValueError, match="class names"):
        comparison_table(matrices, ["bg", "one"])
