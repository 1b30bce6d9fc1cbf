"""The expected answers of the exercises whose answer is a computation, worked out here rather
than in the notebooks' self-check cells: reading a check then does not give its solution away
(Kaggle Learn's ``learntools`` keeps its answers out of the notebooks the same way).

Each function takes the reader's answer and what the expected value is computed from, raises
``AssertionError`` with a hint (never the answer) when the answer is wrong, and returns the
expected value, which the check prints once the answer is right.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from helpers import calibration, metrics, pipeline, tiling
from helpers.data import class_pixel_counts
from helpers.layout import Classes, Pair


def _expect(correct: bool, hint: str) -> None:
    if not correct:
        raise AssertionError(hint)


def background_share(answer: float, pairs: Sequence[Pair], num_classes: int) -> float:
    """Notebook 01, exercise 1: the share of the labelled pixels of ``pairs`` that are class 0."""
    counts = class_pixel_counts(list(pairs), num_classes)
    expected = float(counts[0] / counts.sum())
    _expect(abs(answer - expected) < 1e-3, "Not quite: count the split's pixels class by class.")
    return expected


def rounded_bilinear_errors(
    answer: int, bilinear: np.ndarray, mask: np.ndarray, size: tuple[int, int]
) -> int:
    """Notebook 01, exercise 3: the pixels whose rounded bilinear label differs from the
    majority resize's."""
    expected = int(np.sum(np.round(bilinear) != pipeline.resize_mask(mask, size).numpy()))
    _expect(answer == expected, "Not quite: compare the two resized masks pixel by pixel.")
    return expected


def least_precise_class(answer: str, confusion: np.ndarray, names: Sequence[str]) -> float:
    """Notebook 04, exercise 2: the class of lowest precision (rows: truth, columns:
    prediction); returns that precision."""
    precision = np.diag(confusion) / confusion.sum(axis=0)
    hint = "Precision: of the pixels predicted as a class, the share that truly are that class."
    _expect(answer == names[int(np.argmin(precision))], hint)
    return float(precision.min())


def vertical_flip_tta(
    answer: float,
    model: keras.Model,
    images: np.ndarray,
    masks: np.ndarray,
    probabilities: np.ndarray,
    classes: Classes,
) -> float:
    """Notebook 04, exercise 3: mean IoU of the average of ``probabilities`` and those of the
    images flipped upside down (flipped back)."""
    upside_down = calibration.predict_probabilities(model, images[:, ::-1])[:, ::-1]
    predicted = ((probabilities + upside_down) / 2).argmax(axis=-1)
    cm = metrics.confusion_matrix(masks, predicted, classes.num_classes, classes.ignore_index)
    expected = metrics.mean_iou(cm)
    hint = "Not quite: flip the rows (the height axis), predict, and flip the result back."
    _expect(abs(answer - expected) < 1e-6, hint)
    return expected


def tiles_per_image(answer: int, side: int, tile: int, overlap: int) -> int:
    """Notebook 06, exercise 1: the tiles covering a ``side`` x ``side`` image."""
    expected = len(tiling.tile_starts(side, tile, overlap)) ** 2
    _expect(answer == expected, "Not quite: tiles cover the image in rows and columns.")
    return expected
