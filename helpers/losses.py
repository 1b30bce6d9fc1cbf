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


def _per_replica_share(batch_loss):
    """A loss computed over the whole (per-replica) batch, divided by the replicas in sync.

    Under ``tf.distribute`` the replicas' gradients are summed, so Keras divides every loss by
    the number of replicas; but it does so only for a loss with a batch axis to average over.
    A batch-level loss (one number, as Dice) must do it itself, or its gradient counts once per
    replica (found in notebook 08). On one replica this changes nothing.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            batch_loss = batch_loss / replicas
    return batch_loss


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
        return _per_replica_share(1.0 - ops.mean(dice))

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


def _per_pixel_mean(values, valid):
    """Per-pixel ``values`` (0 on ignored pixels), rescaled so that Keras' default reduction
    (the mean over *all* pixels, after any ``sample_weight``) becomes the mean over the
    labelled pixels only, as for ``SparseCategoricalCrossentropy(ignore_class=...)``."""
    total = ops.cast(ops.size(valid), "float32")
    return values * valid * (total / ops.maximum(ops.sum(valid), 1.0))


@keras.saving.register_keras_serializable(package="helpers")
class FocalLoss(keras.losses.Loss):
    """Multi-class focal loss on logits (Lin et al., 2017): ``-(1 - p_t) ** gamma * log p_t``.

    ``p_t`` is the softmax probability of the true class. The factor ``(1 - p_t) ** gamma``
    shrinks the loss of pixels the model already gets right with confidence — most background
    pixels — so the hard and rare ones weigh more (notebook 06). ``gamma=0`` is exactly the
    cross-entropy of ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=...)``, per-
    pixel ``sample_weight`` included. Pixels equal to ``ignore_index`` count nowhere.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        ignore_index: int | None = None,
        name: str = "focal_loss",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma, self.ignore_index = gamma, ignore_index

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        one_hot, valid = _valid_one_hot(y_true, ops.shape(logits)[-1], self.ignore_index)
        log_p_true = ops.sum(ops.log_softmax(logits, axis=-1) * one_hot, axis=-1)
        focal = -((1.0 - ops.exp(log_p_true)) ** self.gamma) * log_p_true
        return _per_pixel_mean(focal, valid)

    def get_config(self) -> dict:
        return super().get_config() | {"gamma": self.gamma, "ignore_index": self.ignore_index}


def boundary_weights(
    masks: np.ndarray,
    width: int = 2,
    boundary_weight: float = 4.0,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Per-pixel weights (float32, the shape of ``masks``) that favour class boundaries.

    ``1 + boundary_weight`` within ``width`` pixels of a boundary (chessboard distance from
    :func:`helpers.boundaries.distance_to_boundary`, both sides of an edge), 1 elsewhere, 0 on
    ``ignore_index`` pixels; then divided by their mean over each image's labelled pixels, so the
    loss keeps its scale. A border of ``ignore_index`` pixels counts as a boundary too.
    :class:`BoundaryWeightedCrossEntropy` computes the same weights inside the graph.
    """
    from helpers import boundaries  # NumPy only; imported here to keep this module light

    masks = np.asarray(masks)
    batch = masks.reshape(-1, *masks.shape[-2:])
    near = boundaries.distance_to_boundary(batch, max_distance=width) <= width
    valid = np.ones(batch.shape, bool) if ignore_index is None else batch != ignore_index
    weights = (1.0 + boundary_weight * near) * valid
    sums = weights.sum(axis=(1, 2), keepdims=True)
    counts = np.maximum(valid.sum(axis=(1, 2), keepdims=True), 1)
    weights = np.divide(weights * counts, sums, out=np.zeros_like(weights), where=sums > 0)
    return weights.astype(np.float32).reshape(masks.shape)


def _boundary_band(labels, width: int):
    """Pixels of ``labels`` (B, H, W) within ``width`` pixels of another label (float 0/1).

    A pixel is that close exactly when its (2 width + 1)^2 window holds two labels: the window's
    max and min differ. Max pooling with "same" padding ignores the outside of the image, which,
    as in :func:`helpers.boundaries.distance_to_boundary`, is no boundary.
    """
    values = ops.cast(labels, "float32")[..., None]
    size = 2 * width + 1
    highest = ops.max_pool(values, size, strides=1, padding="same")
    lowest = -ops.max_pool(-values, size, strides=1, padding="same")
    return ops.cast(ops.not_equal(highest, lowest), "float32")[..., 0]


@keras.saving.register_keras_serializable(package="helpers")
class BoundaryWeightedCrossEntropy(keras.losses.Loss):
    """Per-pixel cross-entropy on logits, with pixels near class boundaries weighted up.

    The weights are :func:`boundary_weights` (``1 + boundary_weight`` within ``width`` pixels of
    an edge, normalised to a mean of 1 over each image's labelled pixels), computed from the true
    mask inside the graph, so they follow every augmentation. The U-Net paper weighted the thin
    gaps between touching cells the same way (notebook 06). ``boundary_weight=0`` is plain
    cross-entropy; ``ignore_index`` pixels count nowhere.
    """

    def __init__(
        self,
        ignore_index: int | None = None,
        boundary_weight: float = 4.0,
        width: int = 2,
        name: str = "boundary_cross_entropy",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if width < 1 or boundary_weight < 0:
            raise ValueError("width must be >= 1 and boundary_weight >= 0")
        self.ignore_index, self.boundary_weight, self.width = ignore_index, boundary_weight, width

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        one_hot, valid = _valid_one_hot(y_true, ops.shape(logits)[-1], self.ignore_index)
        cross_entropy = -ops.sum(ops.log_softmax(logits, axis=-1) * one_hot, axis=-1)
        weights = (1.0 + self.boundary_weight * _boundary_band(y_true, self.width)) * valid
        spatial = (1, 2)  # normalise per image: mean weight 1 over its labelled pixels
        counts = ops.maximum(ops.sum(valid, axis=spatial, keepdims=True), 1.0)
        weights = (
            weights * counts / ops.maximum(ops.sum(weights, axis=spatial, keepdims=True), 1e-6)
        )
        return _per_pixel_mean(weights * cross_entropy, valid)

    def get_config(self) -> dict:
        return super().get_config() | {
            "ignore_index": self.ignore_index,
            "boundary_weight": self.boundary_weight,
            "width": self.width,
        }
