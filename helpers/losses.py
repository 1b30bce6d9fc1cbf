"""Help for imbalanced classes: class weights from pixel counts (notebooks 03 and 06).

Plain cross-entropy averages over pixels, so a class covering 1% of the pixels contributes about
1% of the gradient and is learned last. Weighting each pixel by its class's weight rebalances that.
"""

from __future__ import annotations

import numpy as np


def class_weights_from_counts(counts: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-class weights proportional to ``frequency ** -power``, normalised to a pixel mean of 1.

    ``power=1`` is full inverse-frequency weighting; the default square root is gentler, which
    keeps the loss from being dominated by a few pixels of the rarest class. Classes with no
    pixels get weight 0. The weighted mean over all labelled pixels is 1, so the loss keeps its
    scale and the learning rate need not change.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or np.any(counts < 0) or counts.sum() == 0:
        raise ValueError("counts must be a 1-D array of non-negative pixel counts, not all zero")
    frequencies = counts / counts.sum()
    weights = np.zeros_like(frequencies)
    present = frequencies > 0
    weights[present] = frequencies[present] ** -power
    return (weights / np.sum(weights * frequencies)).astype(np.float32)
