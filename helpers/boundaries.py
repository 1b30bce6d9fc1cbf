"""Where masks change class: distance to a boundary, boundary bands and boundary scores (NumPy).

Introduced in notebook 04 (evaluation) and used again in notebook 06 (hard cases). Most
segmentation errors sit on the edges of objects, where a pixel-count metric such as IoU hardly
notices them: a large object whose outline is one pixel off still scores a high IoU. These
functions measure the edges themselves::

    distance = distance_to_boundary(masks, max_distance=8)      # 1 = on a boundary
    pixels, errors = errors_by_distance(masks, predictions, max_distance=8)
    boundary_iou_per_class(masks, predictions, num_classes=5, width=2)
    boundary_f_score(masks, predictions, num_classes=5, tolerance=1)

Distances are **chessboard** distances in pixels (the 8 neighbours of a pixel are at distance 1),
computed by repeated 3x3 erosion, so no SciPy is needed. A pixel's distance is to the nearest
pixel with a *different* label, so both sides of an edge get distance 1. The image frame is not a
boundary: a background that touches the border of the image has no edge there. All functions take
one mask ``(H, W)`` or a batch ``(B, H, W)``; a batch is never mixed across images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "boundary_band",
    "boundary_f_score",
    "boundary_iou_per_class",
    "boundary_precision_recall",
    "distance_to_boundary",
    "errors_by_distance",
]


def _as_batch(masks: Any) -> np.ndarray:
    """``masks`` as a ``(B, H, W)`` array (a single ``(H, W)`` mask becomes a batch of one)."""
    array = np.asarray(masks)
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise ValueError(
            f"Expected a mask (H, W) or a batch of masks (B, H, W), got shape {array.shape}. "
            "If these are logits or probabilities, take the argmax over the last axis first."
        )
    return array


def _shifted(array: np.ndarray, pad_value: Any) -> list[np.ndarray]:
    """The 9 views of ``array`` (B, H, W) moved by -1, 0, +1 pixels along H and W."""
    height, width = array.shape[1:]
    if pad_value is None:  # repeat the edge: outside the image looks like the nearest pixel
        padded = np.pad(array, ((0, 0), (1, 1), (1, 1)), mode="edge")
    else:
        padded = np.pad(array, ((0, 0), (1, 1), (1, 1)), constant_values=pad_value)
    return [
        padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]


def _erode(inside: np.ndarray) -> np.ndarray:
    """3x3 binary erosion of a boolean batch; outside the image counts as inside."""
    return np.logical_and.reduce(_shifted(inside, True))


def _dilate(region: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` 3x3 binary dilations: every pixel within chessboard distance ``steps``."""
    for _ in range(steps):
        region = np.logical_or.reduce(_shifted(region, False))
    return region


def distance_to_boundary(masks: Any, max_distance: int = 8) -> np.ndarray:
    """Chessboard distance (int32) from each pixel to the nearest pixel with another label.

    1 means a neighbour (of the 8) has another label: the pixel lies on a boundary. Pixels
    farther than ``max_distance`` get ``max_distance + 1`` (read: "farther"). The output has the
    shape of ``masks``. Every label value counts, ``ignore_index`` included: leave ignored
    pixels out afterwards where they should not count.
    """
    if max_distance < 1:
        raise ValueError(f"max_distance must be at least 1, got {max_distance}.")
    labels = _as_batch(masks)
    differs = np.logical_or.reduce([shifted != labels for shifted in _shifted(labels, None)])
    distance = np.where(differs, 1, max_distance + 1).astype(np.int32)
    uniform = ~differs  # the 3x3 window around the pixel holds one label only
    for radius in range(2, max_distance + 1):
        uniform = _erode(uniform)  # now: the (2 radius + 1)^2 window holds one label only
        distance[(distance > radius) & ~uniform] = radius
    return distance.reshape(np.shape(masks))


def boundary_band(masks: Any, width: int = 2) -> np.ndarray:
    """Boolean mask of the pixels within ``width`` pixels of a class boundary (both sides)."""
    return distance_to_boundary(masks, max_distance=width) <= width


def _valid(y_true: np.ndarray, ignore_index: int | None) -> np.ndarray:
    return np.ones(y_true.shape, bool) if ignore_index is None else y_true != ignore_index


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true, pred = _as_batch(y_true), _as_batch(y_pred)
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true has shape {np.shape(y_true)} but y_pred has {np.shape(y_pred)}. "
            "Fix: pass masks and predicted masks (class ids, not logits) of the same shape."
        )
    return true, pred


def errors_by_distance(
    y_true: Any, y_pred: Any, max_distance: int = 8, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts and error counts by distance to the nearest *true* boundary.

    Returns two int64 arrays of length ``max_distance + 1``: entry ``d - 1`` counts the pixels
    at distance ``d`` (1 = on a boundary), and the last entry those farther than
    ``max_distance``. ``errors / pixels`` is the error rate at each distance. Pixels whose true
    label is ``ignore_index`` count nowhere.
    """
    true, pred = _check_pair(y_true, y_pred)
    valid = _valid(true, ignore_index)
    distance = distance_to_boundary(true, max_distance)[valid] - 1
    wrong = (true != pred)[valid]
    pixels = np.bincount(distance, minlength=max_distance + 1).astype(np.int64)
    errors = np.bincount(distance[wrong], minlength=max_distance + 1).astype(np.int64)
    return pixels, errors


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, NaN where the denominator is 0."""
    out = np.full(np.shape(numerator), np.nan)
    return np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)


def boundary_iou_per_class(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    width: int = 2,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Per-class Boundary IoU (Cheng et al., 2021), pooled over every image of the batch.

    For class ``c``, ``G`` is the set of its true pixels within ``width`` pixels of an edge of
    ``c`` (the inner band of the true region) and ``P`` the same band of the predicted region;
    the score is ``|G ∩ P| / |G ∪ P|``. Unlike IoU, it weighs a large object's outline as much as
    a small one's. NaN where a class has no band in truth or prediction. Pixels whose true label
    is ``ignore_index`` count nowhere.
    """
    true, pred = _check_pair(y_true, y_pred)
    valid = _valid(true, ignore_index)
    true_band = boundary_band(true, width) & valid
    pred_band = boundary_band(pred, width) & valid
    intersections = np.zeros(num_classes, np.int64)
    unions = np.zeros(num_classes, np.int64)
    for class_id in range(num_classes):
        in_truth = true_band & (true == class_id)
        in_prediction = pred_band & (pred == class_id)
        intersections[class_id] = np.count_nonzero(in_truth & in_prediction)
        unions[class_id] = np.count_nonzero(in_truth | in_prediction)
    return _ratio(intersections, unions)


def boundary_precision_recall(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    tolerance: int = 1,
    ignore_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class boundary precision and recall with a distance ``tolerance`` in pixels.

    The contour of class ``c`` is the set of its pixels that touch another label. Precision:
    the share of predicted contour pixels lying within ``tolerance`` pixels of the true contour;
    recall: the share of true contour pixels within ``tolerance`` of the predicted contour.
    Counts are pooled over the batch; NaN where a class has no contour (predicted, resp. true).
    """
    true, pred = _check_pair(y_true, y_pred)
    valid = _valid(true, ignore_index)
    true_edge = (distance_to_boundary(true, 1) == 1) & valid
    pred_edge = (distance_to_boundary(pred, 1) == 1) & valid
    counts = np.zeros((4, num_classes), np.int64)  # matched predicted, predicted, matched, true
    for class_id in range(num_classes):
        truth, predicted = true_edge & (true == class_id), pred_edge & (pred == class_id)
        counts[0, class_id] = np.count_nonzero(predicted & _dilate(truth, tolerance))
        counts[1, class_id] = np.count_nonzero(predicted)
        counts[2, class_id] = np.count_nonzero(truth & _dilate(predicted, tolerance))
        counts[3, class_id] = np.count_nonzero(truth)
    return _ratio(counts[0], counts[1]), _ratio(counts[2], counts[3])


def boundary_f_score(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    tolerance: int = 1,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Per-class boundary F-score: the harmonic mean of :func:`boundary_precision_recall`.

    0 where a class has a contour in only one of truth and prediction (missed, or invented), or
    where no contour pixel matches; NaN where it has none in either.
    """
    precision, recall = boundary_precision_recall(
        y_true, y_pred, num_classes, tolerance, ignore_index
    )
    known_precision, known_recall = np.nan_to_num(precision), np.nan_to_num(recall)
    total = known_precision + known_recall
    f_score = np.divide(
        2 * known_precision * known_recall, total, out=np.zeros(num_classes), where=total > 0
    )
    f_score[np.isnan(precision) & np.isnan(recall)] = np.nan
    return f_score
