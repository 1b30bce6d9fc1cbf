"""helpers.boundaries: distances, bands and boundary scores on hand-computed tiny masks."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.boundaries import (
    boundary_band,
    boundary_f_score,
    boundary_iou_per_class,
    boundary_precision_recall,
    distance_to_boundary,
    errors_by_distance,
)

# One row of 8 pixels: class 0 on the left, class 1 on the right; the prediction moves the edge
# one pixel to the left.
ROW_TRUE = np.array([[0, 0, 0, 0, 1, 1, 1, 1]])
ROW_PRED = np.array([[0, 0, 0, 1, 1, 1, 1, 1]])


def test_distance_to_a_square_counts_chessboard_steps() -> None:
    mask = np.zeros((7, 7), np.uint8)
    mask[2:5, 2:5] = 1
    expected = np.full((7, 7), 2)
    expected[1:6, 1:6] = 1  # the square's edge and the ring of background around it
    expected[3, 3] = 2  # the square's centre: its 3x3 window is all square, its 5x5 is not
    distance = distance_to_boundary(mask, max_distance=3)
    np.testing.assert_array_equal(distance, expected)
    assert distance.dtype == np.int32 and distance.shape == (7, 7)


def test_image_frame_is_no_boundary_and_far_pixels_are_capped() -> None:
    stripes = np.zeros((3, 9), np.uint8)
    stripes[:, 5:] = 1
    np.testing.assert_array_equal(distance_to_boundary(stripes, 8)[0], [5, 4, 3, 2, 1, 1, 2, 3, 4])
    np.testing.assert_array_equal(distance_to_boundary(stripes, 3)[0], [4, 4, 3, 2, 1, 1, 2, 3, 4])
    np.testing.assert_array_equal(boundary_band(stripes, 2)[0], [0, 0, 0, 1, 1, 1, 1, 0, 0])
    assert (distance_to_boundary(np.zeros((4, 5)), 2) == 3).all(), "one class: no boundary"


def test_a_batch_never_mixes_images() -> None:
    batch = np.stack([np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)])
    assert (distance_to_boundary(batch, 2) == 3).all()
    assert distance_to_boundary(batch, 2).shape == (2, 4, 4)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="max_distance"):
        distance_to_boundary(np.zeros((3, 3)), 0)
    with pytest.raises(ValueError, match="argmax"):
        distance_to_boundary(np.zeros((1, 3, 3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        errors_by_distance(np.zeros((3, 3)), np.zeros((3, 4)))


def test_errors_by_distance_hand_computed() -> None:
    pixels, errors = errors_by_distance(ROW_TRUE, ROW_PRED, max_distance=3)
    # True distances: 4 3 2 1 | 1 2 3 4; the one error is at distance 1; 4 means "farther".
    np.testing.assert_array_equal(pixels, [2, 2, 2, 2])
    np.testing.assert_array_equal(errors, [1, 0, 0, 0])
    assert pixels.dtype == errors.dtype == np.int64


def test_errors_by_distance_skips_ignored_pixels() -> None:
    true = np.array([[255, 0, 0, 0, 1, 1, 1, 1]])
    pixels, errors = errors_by_distance(true, ROW_PRED, max_distance=3, ignore_index=255)
    # The ignored pixel is a label too: pixel 1 is now on a boundary, pixel 2 at distance 2.
    # Distances of the counted pixels: 1 2 1 | 1 2 3 4.
    np.testing.assert_array_equal(pixels, [3, 2, 1, 1])
    np.testing.assert_array_equal(errors, [1, 0, 0, 0])


def test_boundary_iou_hand_computed() -> None:
    # width 1: true bands {3} (class 0) and {4} (class 1), predicted {2} and {3}: no overlap.
    np.testing.assert_array_equal(boundary_iou_per_class(ROW_TRUE, ROW_PRED, 2, width=1), [0, 0])
    # width 2: class 0: true {2, 3}, predicted {1, 2} -> 1/3; class 1: {4, 5} vs {3, 4} -> 1/3.
    # (Plain IoU: 3/4 and 4/5.) Class 2 appears nowhere: NaN.
    scores = boundary_iou_per_class(ROW_TRUE, ROW_PRED, 3, width=2)
    np.testing.assert_allclose(scores[:2], [1 / 3, 1 / 3])
    assert np.isnan(scores[2])


def test_boundary_iou_of_a_perfect_prediction_is_one_and_ignored_pixels_count_nowhere() -> None:
    np.testing.assert_array_equal(boundary_iou_per_class(ROW_TRUE, ROW_TRUE, 2), [1, 1])
    true = np.array([[255, 0, 0, 0, 1, 1, 1, 1]])
    pred = np.array([[1, 0, 0, 0, 1, 1, 1, 1]])  # wrong only where the truth is ignored
    # width 1, counted pixels: class 0 bands {1, 3} in both; class 1 bands {4} in both.
    scores = boundary_iou_per_class(true, pred, 2, width=1, ignore_index=255)
    np.testing.assert_array_equal(scores, [1, 1])
    # Counted, the ignored pixel would join the predicted band of class 1: IoU 1/2.
    np.testing.assert_array_equal(boundary_iou_per_class(true, pred, 2, width=1), [1, 0.5])


def test_boundary_precision_recall_and_f_score_with_tolerance() -> None:
    # Contours: true {3} for class 0 and {4} for class 1; predicted {2} and {3}.
    precision, recall = boundary_precision_recall(ROW_TRUE, ROW_PRED, 2, tolerance=0)
    np.testing.assert_array_equal(precision, [0, 0])
    np.testing.assert_array_equal(recall, [0, 0])
    np.testing.assert_array_equal(boundary_f_score(ROW_TRUE, ROW_PRED, 2, tolerance=0), [0, 0])
    np.testing.assert_array_equal(boundary_f_score(ROW_TRUE, ROW_PRED, 2, tolerance=1), [1, 1])


def test_boundary_f_score_of_missed_and_absent_classes() -> None:
    true = np.array([[0, 0, 2, 2, 1, 1]])
    pred = np.array([[0, 0, 0, 1, 1, 1]])
    precision, recall = boundary_precision_recall(true, pred, 4, tolerance=1)
    # Class 2 is missed: no predicted contour (precision undefined), recall 0 -> F 0.
    assert np.isnan(precision[2]) and recall[2] == 0
    # Class 0: predicted contour {2} is next to the true {1}; class 1 likewise.
    np.testing.assert_array_equal(precision[:2], [1, 1])
    np.testing.assert_array_equal(recall[:2], [1, 1])
    f_score = boundary_f_score(true, pred, 4, tolerance=1)
    np.testing.assert_array_equal(f_score[:3], [1, 1, 0])
    assert np.isnan(f_score[3]), "class 3 has no contour anywhere"


def test_boundary_scores_skip_ignored_contours() -> None:
    true = np.array([[0, 0, 255, 1, 1, 1]])
    pred = np.array([[0, 0, 0, 0, 1, 1]])
    precision, recall = boundary_precision_recall(true, pred, 2, tolerance=0, ignore_index=255)
    # Predicted contours {3} (class 0) and {4} (class 1); true contours {1} and {3}.
    np.testing.assert_array_equal(precision, [0, 0])
    np.testing.assert_array_equal(recall, [0, 0])
    precision, recall = boundary_precision_recall(true, pred, 2, tolerance=2, ignore_index=255)
    np.testing.assert_array_equal(precision, [1, 1])
    np.testing.assert_array_equal(recall, [1, 1])
