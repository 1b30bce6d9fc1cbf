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

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RegionScores",
    "StreamingConfusionMatrix",
    "best_single_label_masks",
    "class_accuracy",
    "comparison_table",
    "confusion_matrix",
    "confusion_matrix_from_batches",
    "confusion_matrix_per_image",
    "dice_per_class",
    "frequency_weighted_iou",
    "iou_by_size",
    "iou_per_class",
    "mean_iou",
    "metrics_table",
    "per_image_mean_iou",
    "pixel_accuracy",
    "region_scores",
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


# ----------------------------------------------------------------------------------------------
# Per image and per region (notebooks 04 and 06): the same metrics, one image at a time
# ----------------------------------------------------------------------------------------------


def confusion_matrix_per_image(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """One confusion matrix per image of a batch: int64, shape ``(B, C, C)``.

    ``y_true`` and ``y_pred`` are batches of class-id masks ``(B, H, W)``. Their sum over the
    first axis is the confusion matrix of the whole batch.
    """
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.ndim != 3 or true.shape != pred.shape:
        raise ValueError(
            f"Expected two batches of masks (B, H, W) of the same shape, got {true.shape} and "
            f"{pred.shape}. Fix: stack the masks, and take the argmax of logits first."
        )
    return np.stack(
        [confusion_matrix(t, p, num_classes, ignore_index) for t, p in zip(true, pred, strict=True)]
    )


def per_image_mean_iou(
    y_true: Any, y_pred: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """The mean IoU of each image on its own (float64, shape ``(B,)``), as :func:`mean_iou`.

    Classes absent from both an image's truth and its prediction are left out of that image's
    mean, so an image with one small object is judged on background and that object only.
    Sorting by it finds the images a model gets most wrong.
    """
    matrices = confusion_matrix_per_image(y_true, y_pred, num_classes, ignore_index)
    return np.array([mean_iou(matrix) for matrix in matrices])


@dataclass(frozen=True)
class RegionScores:
    """One entry per region: all the true pixels of one class in one image (see below)."""

    image: np.ndarray  # index of the image in the batch
    class_id: np.ndarray  # the region's class
    pixels: np.ndarray  # the region's size: its number of true pixels
    iou: np.ndarray  # IoU of that class in that image


def region_scores(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    ignore_index: int | None = None,
    exclude: Iterable[int] = (),
) -> RegionScores:
    """Size and IoU of every (image, class) region present in the truth of a batch.

    A *region* is the set of true pixels of one class in one image; its IoU is that class's IoU
    on that image alone. In ``shapes``, a region other than background is usually one object
    (two objects of the same class in one image form one region). Large regions dominate a
    pooled IoU; these per-region scores let you ask how well *small* objects are segmented,
    with :func:`iou_by_size`. Classes listed in ``exclude`` (say the background, ``(0,)``) get
    no entries.
    """
    matrices = confusion_matrix_per_image(y_true, y_pred, num_classes, ignore_index)
    true_pixels = matrices.sum(axis=2)  # (B, C)
    true_pixels[:, list(exclude)] = 0
    ious = np.stack([iou_per_class(matrix) for matrix in matrices])
    image, class_id = np.nonzero(true_pixels)
    return RegionScores(image, class_id, true_pixels[image, class_id], ious[image, class_id])


def iou_by_size(pixels: Any, ious: Any, edges: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Number of regions and their mean IoU in each size bucket ``[edges[i], edges[i + 1])``.

    ``pixels`` and ``ious`` come from :func:`region_scores`. Each region counts once, whatever its
    size: the mean says how well a typical object of that size is segmented. NaN for an empty
    bucket; regions outside all buckets are left out.
    """
    pixels, ious, edges = np.asarray(pixels), np.asarray(ious, np.float64), np.asarray(edges)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be at least two increasing numbers, got {edges.tolist()}.")
    bucket = np.searchsorted(edges, pixels, side="right") - 1
    inside = (bucket >= 0) & (bucket < edges.size - 1)
    counts = np.bincount(bucket[inside], minlength=edges.size - 1)
    sums = np.bincount(bucket[inside], weights=ious[inside], minlength=edges.size - 1)
    return counts.astype(np.int64), _ratio(sums, counts)


# ----------------------------------------------------------------------------------------------
# Baselines and tables (notebook 04)
# ----------------------------------------------------------------------------------------------


def best_single_label_masks(
    y_true: Any, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Each true mask filled with its own most frequent class (uint8, same shape as ``y_true``).

    The best any model with *one label per image* could do, even with perfect knowledge of the
    answer: it is the upper bound of the blog post's classifier painted over the image. An image
    whose pixels are all ``ignore_index`` gets class 0.
    """
    true = np.asarray(y_true)
    if true.ndim < 2:
        raise ValueError(f"Expected a mask (H, W) or a batch (B, H, W), got shape {true.shape}.")
    batch = true.reshape(-1, *true.shape[-2:])
    filled = np.empty(batch.shape, np.uint8)
    for index, mask in enumerate(batch):
        labels = mask[mask != ignore_index] if ignore_index is not None else mask.ravel()
        counts = np.bincount(labels.astype(np.int64).ravel(), minlength=num_classes)
        filled[index] = np.argmax(counts[:num_classes])
    return filled.reshape(true.shape)


def comparison_table(matrices: dict[str, np.ndarray], class_names: Iterable[str]) -> str:
    """A text table, one row per model: pixel accuracy, mean IoU and the IoU of every class.

    ``matrices`` maps a model's name to its confusion matrix. Undefined values print as "—".
    """
    names = list(class_names)
    row_width = max([len("model"), *(len(name) for name in matrices)])
    headers = ["pixel acc.", "mean IoU", *names]
    widths = [max(len(header), 6) for header in headers]

    def cell(value: float, width: int) -> str:
        return f"{'—' if math.isnan(value) else f'{value:.3f}':>{width}s}"

    header = [f"{title:>{width}s}" for title, width in zip(headers, widths, strict=True)]
    lines = ["  ".join([f"{'model':{row_width}s}", *header])]
    for model, matrix in matrices.items():
        values = [pixel_accuracy(matrix), mean_iou(matrix), *iou_per_class(matrix)]
        if len(values) != len(headers):
            raise ValueError(f"{model}: a {len(matrix)}-class matrix for {len(names)} class names.")
        cells = [cell(v, w) for v, w in zip(values, widths, strict=True)]
        lines.append("  ".join([f"{model:{row_width}s}", *cells]))
    return "\n".join(lines)
