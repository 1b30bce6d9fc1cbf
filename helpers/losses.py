"""Help for imbalanced classes: class weights and the Dice loss (notebooks 03 and 06).

Plain cross-entropy averages over pixels, so a class covering 1% of the pixels contributes about
1% of the gradient and is learned last. Weighting each pixel by its class's weight rebalances that.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


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


def _valid_one_hot(y_true, num_classes: int, ignore_index: int | None):
    """One-hot labels and a 0/1 mask of labelled pixels (``ignore_index`` pixels are 0)."""
    labels = ops.cast(y_true, "int32")
    valid = ops.ones_like(labels, dtype="float32")
    if ignore_index is not None:
        valid = ops.cast(ops.not_equal(labels, ignore_index), "float32")
        labels = ops.where(ops.equal(labels, ignore_index), 0, labels)
    return ops.one_hot(labels, num_classes) * valid[..., None], valid


@keras.saving.register_keras_serializable(package="helpers")
class DiceLoss(keras.losses.Loss):
    """Soft multi-class Dice loss on logits: ``1 - mean over classes of 2|P∩Y| / (|P| + |Y|)``.

    Computed over the whole batch (the overlap of each class, summed over all its pixels), so
    a rare class counts as much as the background. Pixels equal to ``ignore_index`` count in
    neither the overlap nor the sizes. Classes absent from both truth and prediction score 1.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        smooth: float = 1.0,
        name: str = "dice_loss",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes, self.ignore_index, self.smooth = num_classes, ignore_index, smooth

    def call(self, y_true, y_pred):
        one_hot, valid = _valid_one_hot(y_true, self.num_classes, self.ignore_index)
        probabilities = ops.softmax(ops.cast(y_pred, "float32"), axis=-1) * valid[..., None]
        axes = tuple(range(len(one_hot.shape) - 1))  # every axis but the class axis
        overlap = ops.sum(probabilities * one_hot, axis=axes)
        sizes = ops.sum(probabilities, axis=axes) + ops.sum(one_hot, axis=axes)
        dice = (2.0 * overlap + self.smooth) / (sizes + self.smooth)
        return 1.0 - ops.mean(dice)

    def get_config(self) -> dict:
        return super().get_config() | {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "smooth": self.smooth,
        }


@keras.saving.register_keras_serializable(package="helpers")
class CrossEntropyDiceLoss(keras.losses.Loss):
    """Per-pixel cross-entropy (on logits, skipping ``ignore_index``) plus the Dice loss."""

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        dice_weight: float = 1.0,
        name: str = "cross_entropy_dice",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes, self.ignore_index, self.dice_weight = (
            num_classes,
            ignore_index,
            dice_weight,
        )
        self.cross_entropy = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=ignore_index
        )
        self.dice = DiceLoss(num_classes, ignore_index)

    def call(self, y_true, y_pred):
        return self.cross_entropy(y_true, y_pred) + self.dice_weight * self.dice(y_true, y_pred)

    def get_config(self) -> dict:
        return super().get_config() | {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "dice_weight": self.dice_weight,
        }
