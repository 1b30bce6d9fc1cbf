"""Pictures of segmentation data: class colours, overlays, grids, bar charts (notebook 01).

Every notebook draws classes with the colours of ``classes.json``, so a class keeps its colour
across the whole course. Pixels equal to ``ignore_index`` are drawn white.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from helpers.data import Classes

IGNORE_COLOR = (255, 255, 255)


def colorize(mask: np.ndarray, classes: Classes) -> np.ndarray:
    """A (H, W) mask of class ids as a (H, W, 3) uint8 RGB picture in the class colours."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: classes.num_classes] = classes.colors
    if classes.ignore_index is not None:
        palette[classes.ignore_index] = IGNORE_COLOR
    return palette[np.asarray(mask, dtype=np.uint8)]


def overlay(
    image: np.ndarray, mask: np.ndarray, classes: Classes, alpha: float = 0.5
) -> np.ndarray:
    """The image with the coloured mask blended over it; background pixels (id 0) stay clear."""
    picture = np.asarray(image, dtype=np.float32)
    if picture.max() > 1.0:
        picture = picture / 255.0
    colors = colorize(mask, classes).astype(np.float32) / 255.0
    weight = np.where(np.asarray(mask)[..., None] == 0, 0.0, alpha)
    return (1 - weight) * picture + weight * colors


def class_legend(classes: Classes) -> list[Patch]:
    """Legend handles: one coloured patch per class name."""
    handles = [
        Patch(facecolor=np.array(color) / 255, edgecolor="black", label=f"{index} {name}")
        for index, (name, color) in enumerate(zip(classes.names, classes.colors, strict=True))
    ]
    if classes.ignore_index is not None:
        handles.append(
            Patch(facecolor="white", edgecolor="black", label=f"{classes.ignore_index} ignore")
        )
    return handles


def show_pairs(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    classes: Classes,
    predictions: Sequence[np.ndarray] | None = None,
    *,
    titles: Sequence[str] = ("image", "mask", "overlay"),
    size: float = 2.0,
) -> plt.Figure:
    """A grid, one row per example: image, mask, overlay (and prediction if given)."""
    columns = 3 + (predictions is not None)
    figure, axes = plt.subplots(
        len(images), columns, figsize=(size * columns, size * len(images)), squeeze=False
    )
    for row, (image, mask) in enumerate(zip(images, masks, strict=True)):
        panels = [image, colorize(mask, classes), overlay(image, mask, classes)]
        names = list(titles)
        if predictions is not None:
            panels.append(colorize(predictions[row], classes))
            names.append("prediction")
        for axis, panel, name in zip(axes[row], panels, names, strict=True):
            axis.imshow(panel, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name)
    figure.legend(
        handles=class_legend(classes),
        loc="lower center",
        ncol=min(6, classes.num_classes + 1),
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure


def plot_class_frequencies(
    counts: np.ndarray, classes: Classes, ax: plt.Axes | None = None
) -> plt.Axes:
    """Bar chart of each class's share of all labelled pixels, on a log scale."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    shares = np.asarray(counts, dtype=np.float64) / max(int(np.sum(counts)), 1)
    bars = ax.bar(
        classes.names, shares * 100, color=np.array(classes.colors) / 255, edgecolor="black"
    )
    ax.bar_label(bars, labels=[f"{share:.1%}" for share in shares], padding=2)
    ax.set_yscale("log")
    ax.set_ylabel("share of labelled pixels (%, log scale)")
    ax.set_title("Class pixel frequencies")
    ax.margins(y=0.2)
    return ax


def _image_row(panels: list[tuple[str, np.ndarray]], classes: Classes, size: float) -> plt.Figure:
    """One row of titled pictures with the class legend underneath."""
    figure, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size + 0.8))
    for axis, (title, panel) in zip(np.atleast_1d(axes), panels, strict=True):
        axis.imshow(panel, interpolation="nearest")
        axis.set_title(title)
        axis.set_axis_off()
    figure.legend(
        handles=class_legend(classes),
        loc="lower center",
        ncol=min(6, classes.num_classes + 1),
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    return figure


def show_snapshots(
    image: np.ndarray,
    masks_by_epoch: dict[int, np.ndarray],
    classes: Classes,
    truth: np.ndarray | None = None,
    size: float = 1.8,
) -> plt.Figure:
    """One image, then its predicted mask after each recorded epoch (epoch 0: before training)."""
    panels = [("image", np.asarray(image))]
    if truth is not None:
        panels.append(("truth", colorize(truth, classes)))
    panels += [
        ("before training" if epoch == 0 else f"epoch {epoch}", colorize(mask, classes))
        for epoch, mask in sorted(masks_by_epoch.items())
    ]
    return _image_row(panels, classes, size)


def compare_predictions(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    predictions: dict[str, Sequence[np.ndarray]],
    classes: Classes,
    size: float = 1.8,
) -> plt.Figure:
    """A grid, one row per image: image, truth, then each model's predicted mask."""
    columns = 2 + len(predictions)
    figure, axes = plt.subplots(
        len(images), columns, figsize=(size * columns, size * len(images) + 0.6), squeeze=False
    )
    for row, (image, mask) in enumerate(zip(images, masks, strict=True)):
        panels = [("image", np.asarray(image)), ("truth", colorize(mask, classes))]
        panels += [
            (name, colorize(predicted[row], classes)) for name, predicted in predictions.items()
        ]
        for axis, (title, panel) in zip(axes[row], panels, strict=True):
            axis.imshow(panel, interpolation="nearest")
            axis.set_axis_off()
            if row == 0:
                axis.set_title(title)
    figure.legend(
        handles=class_legend(classes),
        loc="lower center",
        ncol=min(6, classes.num_classes + 1),
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure
