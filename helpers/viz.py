"""Pictures of segmentation data: colours, overlays, grids, charts, evaluation plots (notebook 01).

Every notebook draws classes with the colours of ``classes.json``, so a class keeps its colour
across the whole course. Pixels equal to ``ignore_index`` are drawn white. The evaluation plots
at the end (confusion matrix, per-class scores, reliability, errors) come from notebook 04.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from helpers.calibration import Reliability, expected_calibration_error
from helpers.layout import Classes
from helpers.metrics import RegionScores, iou_by_size

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


# ----------------------------------------------------------------------------------------------
# Evaluation plots (notebook 04, reused by notebook 06)
# ----------------------------------------------------------------------------------------------

ERROR_COLOR = (230, 0, 0)


def plot_confusion_matrix(
    cm: np.ndarray,
    classes: Classes,
    ax: plt.Axes | None = None,
    title: str = "Confusion matrix (each row sums to 100 %)",
) -> plt.Axes:
    """Heatmap of a confusion matrix normalised by row: where each true class's pixels went.

    Cell (i, j) is the share of class i's true pixels predicted as class j, so the diagonal is
    each class's recall. A class absent from the truth has an empty row.
    """
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    shares = np.divide(cm, totals, out=np.full(cm.shape, np.nan), where=totals > 0)
    if ax is None:
        size = 1.0 + 0.9 * classes.num_classes
        _, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(shares * 100, cmap="Blues", vmin=0, vmax=100)
    for (row, column), share in np.ndenumerate(shares):
        if not np.isnan(share):
            color = "white" if share > 0.6 else "black"
            ax.text(column, row, f"{share:.1%}", ha="center", va="center", color=color, fontsize=8)
    ticks = np.arange(classes.num_classes)
    ax.set_xticks(ticks, classes.names, rotation=30, ha="right")
    ax.set_yticks(ticks, classes.names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="share of the true class's pixels (%)", shrink=0.8)
    return ax


def plot_per_class(
    scores: dict[str, np.ndarray],
    classes: Classes,
    ax: plt.Axes | None = None,
    title: str = "Per-class scores",
    ylabel: str = "score (0 to 1)",
) -> plt.Axes:
    """Grouped bars: for each class (in its colour), one bar per score (told apart by hatching).

    ``scores`` maps a score's name (e.g. "IoU", "Dice") to one value per class; NaN values are
    left out.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 + 1.3 * classes.num_classes, 3.5))
    hatches = ["", "///", "...", "xx", "\\\\"]
    width = 0.8 / max(len(scores), 1)
    positions = np.arange(classes.num_classes)
    colors = np.array(classes.colors) / 255
    for index, (name, values) in enumerate(scores.items()):
        values = np.asarray(values, dtype=np.float64)
        bars = ax.bar(
            positions + (index - (len(scores) - 1) / 2) * width,
            np.nan_to_num(values),
            width,
            color=colors,
            edgecolor="black",
            hatch=hatches[index % len(hatches)],
            label=name,
        )
        labels = ["" if np.isnan(value) else f"{value:.2f}" for value in values]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=8)
    ax.set_xticks(positions, classes.names)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    handles = [
        Patch(facecolor="white", edgecolor="black", hatch=hatches[i % len(hatches)], label=name)
        for i, name in enumerate(scores)
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def plot_reliability_diagram(
    reliability: Reliability,
    ax: plt.Axes | None = None,
    title: str = "Reliability diagram",
) -> plt.Axes:
    """Accuracy against confidence per bin of a ``helpers.calibration.Reliability``.

    Bars: the share of correct pixels in each confidence bin, labelled with the bin's share of
    all pixels; dots: the bin's mean confidence; the dashed diagonal is perfect calibration. A
    bar below its dot means overconfidence. The title shows the expected calibration error.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    edges = reliability.edges
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    filled = reliability.counts > 0
    shares = reliability.counts / max(int(reliability.counts.sum()), 1)
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.bar(
        centers[filled],
        reliability.accuracy[filled],
        width * 0.9,
        color="tab:blue",
        edgecolor="black",
        alpha=0.6,
        label="accuracy in bin (label: share of pixels)",
    )
    for center, share in zip(centers[filled], shares[filled], strict=True):
        ax.text(center, 0.02, f"{share:.1%}", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.plot(
        centers[filled],
        reliability.confidence[filled],
        "o",
        color="tab:red",
        markersize=4,
        label="mean confidence in bin",
    )
    ece = expected_calibration_error(reliability)
    ax.set(xlim=(0, 1), ylim=(0, 1.15), xlabel="confidence (top softmax probability)")
    ax.set_ylabel("accuracy (share of pixels right)")
    ax.set_title(f"{title}\nECE = {ece:.4f}")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return ax


def plot_region_scores(
    scores: RegionScores,
    classes: Classes,
    edges: Sequence[float],
    ax: plt.Axes | None = None,
    title: str = "IoU of each object against its size",
) -> plt.Axes:
    """Scatter of ``helpers.metrics.region_scores`` (one dot per region, in its class colour).

    Dotted lines separate the size buckets ``[edges[i], edges[i + 1])``; the black steps are
    each bucket's mean IoU (``helpers.metrics.iou_by_size``), written above the plot with the
    number of regions. Sizes are on a log scale.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4))
    pixels = np.asarray(scores.pixels, dtype=np.float64)
    bounds = np.asarray(edges, dtype=np.float64)
    left_limit = max(min(pixels.min(initial=bounds[1]), bounds[1]) / 1.5, 0.5)
    colors = np.array(classes.colors)[scores.class_id] / 255
    ax.scatter(pixels, scores.iou, c=colors, edgecolors="black", linewidths=0.5, s=22, zorder=3)
    counts, means = iou_by_size(pixels, scores.iou, bounds)
    for low, high, count, mean in zip(bounds[:-1], bounds[1:], counts, means, strict=True):
        low = max(low, left_limit)
        ax.axvline(high, color="gray", linestyle=":", linewidth=1)
        if count:
            ax.hlines(mean, low, high, color="black", linewidth=2, zorder=4)
            label = f"{mean:.2f}\nn={count}"
            ax.text(np.sqrt(low * high), 1.04, label, ha="center", va="bottom", fontsize=7)
    ax.set_xscale("log")
    ax.set(xlim=(left_limit, bounds[-1] * 1.05), ylim=(-0.03, 1.22))
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_title(title)
    ax.set_xlabel("object size (true pixels, log scale)")
    ax.set_ylabel("IoU in its image")
    present = sorted(set(np.asarray(scores.class_id).tolist()))
    handles = [
        Patch(
            facecolor=np.array(classes.colors[i]) / 255, edgecolor="black", label=classes.names[i]
        )
        for i in present
    ]
    handles.append(plt.Line2D([], [], color="black", linewidth=2, label="mean of size bucket"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_errors_by_distance(pixels: np.ndarray, errors: np.ndarray) -> plt.Figure:
    """Two panels from ``helpers.boundaries.errors_by_distance``: where the errors are.

    Left: the error rate at each distance to the nearest true boundary. Right: each distance's
    share of all pixels and of all errors; errors crowd where pixels are few.
    """
    pixels, errors = np.asarray(pixels), np.asarray(errors)
    labels = [str(d) for d in range(1, len(pixels))] + [f">{len(pixels) - 1}"]
    positions = np.arange(len(pixels))
    figure, (rate_axis, share_axis) = plt.subplots(1, 2, figsize=(11, 3.5))
    rates = np.divide(errors, pixels, out=np.zeros(len(pixels)), where=pixels > 0)
    rate_axis.bar(positions, rates * 100, color="tab:red", edgecolor="black")
    rate_axis.set_xticks(positions, labels)
    rate_axis.set(
        xlabel="distance to the nearest true boundary (pixels)",
        ylabel="error rate (% of pixels wrong)",
        title="Error rate by distance to a boundary",
    )
    for index, (name, counts, color) in enumerate(
        (("all pixels", pixels, "tab:gray"), ("wrong pixels", errors, "tab:red"))
    ):
        share = counts / max(int(counts.sum()), 1) * 100
        share_axis.bar(positions + (index - 0.5) * 0.4, share, 0.4, color=color, label=name)
    share_axis.set_xticks(positions, labels)
    share_axis.set(
        xlabel="distance to the nearest true boundary (pixels)",
        ylabel="share (%)",
        title="Where the pixels are, and where the errors are",
    )
    share_axis.legend()
    for axis in (rate_axis, share_axis):
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def error_map(
    image: np.ndarray, mask: np.ndarray, prediction: np.ndarray, classes: Classes
) -> np.ndarray:
    """The image faded to grey, wrong pixels in red and ignored pixels white (float RGB)."""
    picture = np.asarray(image, dtype=np.float32)
    if picture.max() > 1.0:
        picture = picture / 255.0
    faded = 0.35 + 0.3 * picture.mean(axis=-1, keepdims=True) * np.ones(3, np.float32)
    mask, prediction = np.asarray(mask), np.asarray(prediction)
    faded[mask != prediction] = np.array(ERROR_COLOR) / 255
    if classes.ignore_index is not None:
        faded[mask == classes.ignore_index] = 1.0
    return faded


def show_errors(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    classes: Classes,
    row_titles: Sequence[str] | None = None,
    size: float = 1.8,
) -> plt.Figure:
    """A grid, one row per image: image, truth, prediction, and the error map (wrong = red)."""
    figure, axes = plt.subplots(
        len(images), 4, figsize=(size * 4 + 0.6, size * len(images) + 0.6), squeeze=False
    )
    for row, (image, mask, prediction) in enumerate(zip(images, masks, predictions, strict=True)):
        panels = [
            ("image", np.asarray(image)),
            ("truth", colorize(mask, classes)),
            ("prediction", colorize(prediction, classes)),
            ("errors (red)", error_map(image, mask, prediction, classes)),
        ]
        for axis, (title, panel) in zip(axes[row], panels, strict=True):
            axis.imshow(panel, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title)
        if row_titles is not None:
            axes[row, 0].set_ylabel(row_titles[row], fontsize=9)
    handles = [*class_legend(classes), Patch(facecolor=np.array(ERROR_COLOR) / 255, label="wrong")]
    figure.legend(handles=handles, loc="lower center", ncol=min(7, len(handles)), frameon=False)
    figure.tight_layout(rect=(0, 0.6 / (size * len(images) + 0.6), 1, 1))
    return figure
