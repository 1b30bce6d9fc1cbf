"""Segmentation metrics, every one derived from a single confusion matrix (NumPy only).

Introduced in notebook 04 and used from notebook 03 on. Build the matrix once, with
``confusion_matrix`` for arrays in memory or ``confusion_matrix_from_batches`` /
``StreamingConfusionMatrix`` for a whole split, then read any metric off it::

    cm = confusion_matrix(masks, predictions, num_classes=4, ignore_index=255)
    mean_iou(cm), iou_per_class(cm), dice_per_class(cm), pixel_accuracy(cm)

Rows of the matrix are the true class, columns the predicted class. Pixels whose true label is
``ignore_index`` count in no metric. Per-class values are NaN where they are undefined (a class
absent from the truth, or from both truth and prediction); means skip those NaNs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "StreamingConfusionMatrix",
    "class_accuracy",
    "confusion_matrix",
    "confusion_matrix_from_batches",
    "dice_per_class",
    "frequency_weighted_iou",
    "iou_per_class",
    "mean_iou",
    "metrics_table",
    "pixel_accuracy",
]

_SHOWN_VALUES = 10  # how many offending label values an error message lists


def _as_labels(values: Any, name: str) -> np.ndarray:
    """``values`` as an integer array; floats are accepted only when they hold whole numbers."""
    array = np.asarray(values)
    if array.dtype == bool:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        return array
    if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise ValueError(
        f"{name} must hold integer class ids, got dtype {array.dtype}. If these are logits or "
        "probabilities, take the class with the highest score first: argmax over the last axis."
    )


def _check_range(labels: np.ndarray, num_classes: int, name: str) -> None:
    """Raise if any label is outside ``0..num_classes-1``, listing the offending values."""
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = np.unique(labels[(labels < 0) | (labels >= num_classes)])
        shown = ", ".join(str(value) for value in bad[:_SHOWN_VALUES])
        more = f" and {bad.size - _SHOWN_VALUES} more" if bad.size > _SHOWN_VALUES else ""
        raise ValueError(
            f"{name} has values outside 0..{num_classes - 1}: {shown}{more}. Fix: check "
            "num_classes, remap those labels, or pass them as ignore_index (y_true only)."
        )


def confusion_matrix(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Pixel counts (int64, shape (C, C)): row = true class, column = predicted class.

    ``y_true`` and ``y_pred`` are class ids of the same shape (one mask or a batch). Pixels where
    ``y_true == ignore_index`` are dropped before counting.
    """
    if not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
    true = _as_labels(y_true, "y_true")
    pred = _as_labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        hint = (
            " y_pred has one more axis: take argmax over its last axis (logits -> class ids)."
            if pred.shape[:-1] == true.shape
            else " Fix: pass masks and predictions of the same shape."
        )
        raise ValueError(f"y_true has shape {true.shape} but y_pred has {pred.shape}.{hint}")
    if ignore_index is not None:
        keep = true != ignore_index
        true, pred = true[keep], pred[keep]
    _check_range(true, num_classes, "y_true")
    _check_range(pred, num_classes, "y_pred")
    index = num_classes * true.astype(np.int64).ravel() + pred.astype(np.int64).ravel()
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


class StreamingConfusionMatrix:
    """A confusion matrix accumulated batch by batch, so no predictions need to stay in memory."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, y_true: Any, y_pred: Any) -> None:
        """Add the pixels of one batch (arrays or tensors of class ids of the same shape)."""
        self._matrix += confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_index)

    def reset(self) -> None:
        """Forget every pixel counted so far."""
        self._matrix[:] = 0

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the counts so far (int64, shape (C, C))."""
        return self._matrix.copy()


def confusion_matrix_from_batches(
    batches: Iterable[tuple[Any, Any]], num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """One confusion matrix over every ``(y_true, y_pred)`` batch of an iterable.

    The batches may be NumPy arrays or TensorFlow tensors (e.g. a generator that runs a model
    over a ``tf.data`` split); only the running (C, C) counts are kept in memory.
    """
    streaming = StreamingConfusionMatrix(num_classes, ignore_index)
    for y_true, y_pred in batches:
        streaming.update(np.asarray(y_true), np.asarray(y_pred))
    return streaming.matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


def _nanmean(values: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN (without a warning) when there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def pixel_accuracy(cm: np.ndarray) -> float:
    """Fraction of counted pixels whose predicted class is the true class (NaN if none)."""
    cm = np.asarray(cm)
    return float(_ratio(np.trace(cm), cm.sum()))


def class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Per-class recall TP / (TP + FN); NaN for classes absent from the truth."""
    cm = np.asarray(cm)
    return _ratio(np.diag(cm), cm.sum(axis=1))


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU TP / (TP + FP + FN); NaN where a class is absent from truth and prediction."""
    cm = np.asarray(cm)
    true_positives = np.diag(cm)
    return _ratio(true_positives, cm.sum(axis=0) + cm.sum(axis=1) - true_positives)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over classes; classes absent from both truth and prediction are excluded.

    This matches ``keras.metrics.MeanIoU``: an absent class has no IoU (0/0), so it neither
    lowers nor raises the mean. A class that is predicted but never true counts, with IoU 0.
    """
    return _nanmean(iou_per_class(cm))


def dice_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class Dice (F1) 2TP / (2TP + FP + FN); NaN where absent from truth and prediction."""
    cm = np.asarray(cm)
    true_positives = np.diag(cm)
    return _ratio(2 * true_positives, cm.sum(axis=0) + cm.sum(axis=1))


def frequency_weighted_iou(cm: np.ndarray) -> float:
    """IoU averaged with each class weighted by its share of the true pixels (NaN if none)."""
    cm = np.asarray(cm)
    total = cm.sum()
    if total == 0:
        return float("nan")
    frequency = cm.sum(axis=1) / total
    present = frequency > 0  # a class present in the truth always has a defined IoU
    return float(np.sum(frequency[present] * iou_per_class(cm)[present]))


def metrics_table(cm: np.ndarray, class_names: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per-class ``iou``, ``dice``, ``accuracy`` and true ``pixels``, keyed by class name.

    A last row, ``"mean"``, holds each metric's mean over the classes where it is defined (as in
    ``mean_iou``) and the total pixel count.
    """
    cm = np.asarray(cm)
    names = list(class_names)
    if len(names) != cm.shape[0] or "mean" in names:
        raise ValueError(
            f"Expected {cm.shape[0]} class names, none of them 'mean'; got {names}. "
            "Fix: pass the dataset's class names in class-id order."
        )
    columns = {"iou": iou_per_class(cm), "dice": dice_per_class(cm), "accuracy": class_accuracy(cm)}
    table = {
        name: {key: float(values[index]) for key, values in columns.items()}
        | {"pixels": int(cm[index].sum())}
        for index, name in enumerate(names)
    }
    table["mean"] = {key: _nanmean(values) for key, values in columns.items()}
    table["mean"]["pixels"] = int(cm.sum())
    return table
