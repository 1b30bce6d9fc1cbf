"""Per-pixel probabilities: flip test-time augmentation, reliability bins and calibration error.

Introduced in notebook 04. A segmentation model's softmax gives every pixel a probability per
class; the highest one is often read as the model's *confidence*. Whether it deserves that name
is measured, not assumed: group pixels by confidence into bins and compare, in each bin, the mean
confidence with the share of pixels that are actually right::

    probabilities = predict_probabilities(model, images, flip_tta=True)
    reliability = reliability_bins(probabilities, masks, num_bins=10, ignore_index=255)
    expected_calibration_error(reliability)   # 0 for a perfectly calibrated model

Bins of several batches add up (``reliability_a + reliability_b``), so a whole split can be
measured batch by batch. The binning is NumPy only; only ``predict_probabilities`` runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

__all__ = [
    "Reliability",
    "expected_calibration_error",
    "predict_probabilities",
    "reliability_bins",
]


def predict_probabilities(
    model: keras.Model, images: Any, *, flip_tta: bool = False, batch_size: int = 32
) -> np.ndarray:
    """Per-pixel class probabilities (float32, ``(B, H, W, C)``): the softmax of the logits.

    With ``flip_tta=True`` (test-time augmentation) the model also sees every image mirrored
    left-right; its probabilities are mirrored back and averaged with the plain ones. Images are
    run through the model ``batch_size`` at a time, so a whole split fits in memory.
    """
    images = np.asarray(images)
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        probabilities = keras.ops.softmax(model(batch, training=False), axis=-1)
        if flip_tta:
            mirrored_logits = model(batch[:, :, ::-1], training=False)
            mirrored = keras.ops.softmax(keras.ops.flip(mirrored_logits, axis=2), axis=-1)
            probabilities = (probabilities + mirrored) / 2
        parts.append(keras.ops.convert_to_numpy(probabilities).astype(np.float32))
    return np.concatenate(parts)


@dataclass(frozen=True)
class Reliability:
    """Pixel counts, summed confidences and summed correct predictions per confidence bin.

    Bin ``b`` holds the pixels whose confidence lies in ``[edges[b], edges[b + 1])`` (the last
    bin includes 1.0). Add two of them to pool their pixels.
    """

    counts: np.ndarray  # int64, pixels per bin
    confidence_sum: np.ndarray  # float64, sum of the top probability of those pixels
    correct_sum: np.ndarray  # int64, how many of them were predicted right

    @property
    def num_bins(self) -> int:
        return len(self.counts)

    @property
    def edges(self) -> np.ndarray:
        """The ``num_bins + 1`` bin edges, from 0 to 1."""
        return np.linspace(0.0, 1.0, self.num_bins + 1)

    @property
    def confidence(self) -> np.ndarray:
        """Mean confidence of each bin (NaN for an empty bin)."""
        return _ratio(self.confidence_sum, self.counts)

    @property
    def accuracy(self) -> np.ndarray:
        """Share of correct pixels in each bin (NaN for an empty bin)."""
        return _ratio(self.correct_sum, self.counts)

    def __add__(self, other: Reliability) -> Reliability:
        if not isinstance(other, Reliability) or other.num_bins != self.num_bins:
            return NotImplemented
        return Reliability(
            self.counts + other.counts,
            self.confidence_sum + other.confidence_sum,
            self.correct_sum + other.correct_sum,
        )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(numerator), np.nan)
    return np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)


def reliability_bins(
    probabilities: Any,
    y_true: Any,
    num_bins: int = 10,
    ignore_index: int | None = None,
    where: Any = None,
) -> Reliability:
    """Bin the pixels of a batch by confidence (their highest class probability).

    ``probabilities`` has shape ``(..., C)`` and ``y_true`` the same shape without the last
    axis. A pixel is correct when its most probable class is its true class. Pixels whose true
    label is ``ignore_index``, or where the optional boolean mask ``where`` is False (for
    example outside a boundary band), are left out.
    """
    probabilities, true = np.asarray(probabilities), np.asarray(y_true)
    if probabilities.shape[:-1] != true.shape:
        raise ValueError(
            f"probabilities have shape {probabilities.shape}, so y_true needs shape "
            f"{probabilities.shape[:-1]}; got {true.shape}."
        )
    if num_bins < 1:
        raise ValueError(f"num_bins must be at least 1, got {num_bins}.")
    keep = np.ones(true.shape, bool) if where is None else np.asarray(where, bool).copy()
    if ignore_index is not None:
        keep &= true != ignore_index
    confidence = probabilities.max(axis=-1)[keep].astype(np.float64)
    correct = (probabilities.argmax(axis=-1) == true)[keep]
    bins = np.minimum((confidence * num_bins).astype(np.int64), num_bins - 1)
    return Reliability(
        np.bincount(bins, minlength=num_bins).astype(np.int64),
        np.bincount(bins, weights=confidence, minlength=num_bins),
        np.bincount(bins[correct], minlength=num_bins).astype(np.int64),
    )


def expected_calibration_error(reliability: Reliability) -> float:
    """ECE: the gap between confidence and accuracy, averaged over bins weighted by pixels.

    ``sum over bins of (pixels in bin / all pixels) * |accuracy - mean confidence|``; 0 for a
    perfectly calibrated model, NaN when no pixel was binned.
    """
    total = reliability.counts.sum()
    if total == 0:
        return float("nan")
    gaps = np.abs(reliability.correct_sum - reliability.confidence_sum)
    return float(gaps.sum() / total)
