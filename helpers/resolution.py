"""What the training size does to a dataset (taught in notebook 01; ``training.train`` warns).

:func:`report` measures a sample of masks at their native size — image sizes, aspect ratios,
each class's share of the labelled pixels and its typical width — then measures each class's
**ceiling** at the training size: its IoU when the masks are resized to the training size, as
the pipeline does (:func:`helpers.pipeline.resize_mask`), and back to their native size. No model
trained at that size can score a class above its ceiling at full resolution. A class whose
ceiling is under ``CEILING_AT_LEAST`` is *erased* by the scale, and the report names the smallest
size the recipe allows (a multiple of ``SIZE_STEP``, at most the native side rounded up) that
lifts every class over it, with its cost; or training on crops at native scale (notebook 06).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from helpers.layout import Classes, Pair
from helpers.pipeline import resize_mask

SAMPLE_SIZE = 32  # masks measured, spread evenly over the pairs: enough for shares and widths
# A class whose IoU ceiling at the training size is under this is being erased. The course's own
# data clears it at the default sizes (shapes at 64 px: star 0.91; pet photos at 128 px: border
# 0.94), while thin membranes or vessels shrunk 4x fall to about 0.5.
CEILING_AT_LEAST = 0.8
SIZE_STEP = 16  # the sizes tried: multiples of 16 (the U-Net needs multiples of 8)
SMALLEST_SIZE = 32  # the smallest training size the recipe allows


@dataclass(frozen=True)
class ClassAtScale:
    """One class: its share of the labelled pixels and typical width (pixels) at native size,
    and its IoU ceiling at the training size (1.0: the resize loses nothing of it)."""

    name: str
    share: float
    width: float
    ceiling: float


@dataclass(frozen=True)
class ResolutionReport:
    """Native sizes and each class's IoU ceiling at ``image_size`` x ``image_size``."""

    image_size: int
    sizes: dict[tuple[int, int], int]  # (width, height) -> number of sampled masks
    classes: tuple[ClassAtScale, ...]
    suggested_size: int | None  # the smallest larger size that clears every ceiling (or None)
    best: tuple[int, float] | None = None  # without a suggestion: the largest size tried, its
    # lowest ceiling

    @property
    def scale(self) -> float:
        """Training side / typical native side (the geometric mean of width and height)."""
        sides = [math.sqrt(w * h) for (w, h), n in self.sizes.items() for _ in range(n)]
        return self.image_size / float(np.median(sides))

    def erased(self) -> list[ClassAtScale]:
        return [c for c in self.classes if c.share > 0 and c.ceiling < CEILING_AT_LEAST]

    def aspect_ratios(self) -> tuple[float, float]:
        ratios = [w / h for w, h in self.sizes]
        return min(ratios), max(ratios)

    def warnings(self) -> list[str]:
        """What to change before training: classes the size erases (empty when none)."""
        erased = self.erased()
        if not erased:
            return []
        listed = ", ".join(
            f"'{c.name}' {c.ceiling:.2f} (about {c.width:.1f} px wide, "
            f"{c.width * self.scale:.1f} px at this scale)"
            for c in erased
        )
        if self.suggested_size:
            cost = (self.suggested_size / self.image_size) ** 2
            fix = (
                f"image_size={self.suggested_size} (IMAGE_SIZE = {self.suggested_size}) is the "
                f"smallest size that lifts every class's ceiling to {CEILING_AT_LEAST} or more; "
                f"time per epoch grows with the square of the size, about {cost:.1f}x"
            )
        else:
            size, low = self.best or (self.image_size, min(c.ceiling for c in erased))
            fix = (
                f"no size up to the native one lifts every ceiling to {CEILING_AT_LEAST} "
                f"({size} px reaches {low:.2f})"
            )
        return [
            f"Warning: at IMAGE_SIZE {self.image_size} the resize erases thin or small classes. "
            f"IoU ceiling (the masks resized to {self.image_size} px and back: the best any "
            f"model at this size can score at full resolution): {listed}. Fix: {fix}; or train "
            "on crops at native resolution and predict with tiles (notebook 06)."
        ]

    def squash_note(self) -> str | None:
        """What the pipeline does to images that are not square (None when all are)."""
        low, high = self.aspect_ratios()
        if (low, high) == (1.0, 1.0):
            return None
        return (
            f"Note: the images are not square (width/height {low:.2f} to {high:.2f}); the "
            f"pipeline squashes each to {self.image_size}x{self.image_size}. Training and "
            "prediction stretch every image the same way and predicted masks are stretched "
            "back, so this is fine when the ratios are alike; when they vary widely, or shapes "
            "must keep their proportions, crop or pad to squares first."
        )

    def __str__(self) -> str:
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sorted(self.sizes.items()))
        lines = [
            f"native sizes (width x height, masks sampled): {sizes}",
            f"training size {self.image_size}x{self.image_size}: {self.scale:.2f}x the native side",
            f"{'class':14s} {'share':>7s} {'width px':>9s} {'at scale':>9s} {'ceiling':>8s}",
        ]
        for c in self.classes:
            lines.append(
                f"{c.name:14s} {c.share:7.1%} {c.width:9.1f} {c.width * self.scale:9.1f} "
                f"{c.ceiling:8.2f}"
            )
        note = self.squash_note()
        return "\n".join([*lines, *self.warnings(), *([note] if note else [])])


def _sample(pairs: Sequence[Pair], count: int) -> list[Pair]:
    """``count`` pairs spread evenly over ``pairs`` (all of them when there are fewer)."""
    if len(pairs) <= count:
        return list(pairs)
    return [pairs[i] for i in np.linspace(0, len(pairs) - 1, count).round().astype(int)]


def _shares(masks: list[np.ndarray], classes: Classes) -> np.ndarray:
    """Each class's share of the labelled pixels of ``masks``."""
    counts = np.zeros(classes.num_classes, np.int64)
    for mask in masks:
        labels = mask[mask != classes.ignore_index] if classes.ignore_index is not None else mask
        counts += np.bincount(labels.ravel(), minlength=classes.num_classes)[: classes.num_classes]
    return counts / max(counts.sum(), 1)


def typical_widths(masks: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Each class's typical width in pixels: 2 x area / outline length (outline = pixel edges
    between the class and other labels). A strip w pixels wide, along an axis, gives w; a disc of
    radius r about 0.8 r. The outline is counted in pixel edges, a staircase along a slanted edge,
    so a line at an angle comes out up to 1.4 times (at 45°) thinner than it is."""
    areas = np.zeros(num_classes)
    outlines = np.zeros(num_classes)
    for mask in masks:
        areas += np.bincount(mask.ravel(), minlength=num_classes)[:num_classes]
        for a, b in ((mask[1:], mask[:-1]), (mask[:, 1:], mask[:, :-1])):
            edge = a != b
            for side in (a, b):
                outlines += np.bincount(side[edge], minlength=num_classes)[:num_classes]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(outlines > 0, 2 * areas / outlines, np.inf)


def ceilings(masks: list[np.ndarray], classes: Classes, size: int) -> np.ndarray:
    """Each class's IoU when ``masks`` are resized to ``size`` x ``size`` and back to their own
    sizes (over all of them; ignored pixels left out). 1.0 for a class no mask holds."""
    intersection = np.zeros(classes.num_classes)
    union = np.zeros(classes.num_classes)
    for mask in masks:
        back = resize_mask(resize_mask(mask, (size, size)), mask.shape).numpy()
        valid = mask != classes.ignore_index if classes.ignore_index is not None else True
        for c in range(classes.num_classes):
            labelled, predicted = (mask == c) & valid, (back == c) & valid
            intersection[c] += np.count_nonzero(labelled & predicted)
            union[c] += np.count_nonzero(labelled | predicted)
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0)


def _larger_sizes(image_size: int, sizes: Counter) -> list[int]:
    """The allowed sizes above ``image_size``, up to the native side rounded up to SIZE_STEP."""
    largest = math.ceil(max(max(size) for size in sizes) / SIZE_STEP) * SIZE_STEP
    first = max(SMALLEST_SIZE, (image_size // SIZE_STEP + 1) * SIZE_STEP)
    return list(range(first, largest + 1, SIZE_STEP))


def report(pairs: Sequence[Pair], classes: Classes, image_size: int) -> ResolutionReport:
    """Measure each class's IoU ceiling when the masks of ``pairs`` are trained at
    ``image_size``; when one is under ``CEILING_AT_LEAST``, find the smallest larger size
    that lifts every class over it."""
    masks = [
        np.asarray(Image.open(pair.mask)).astype(np.int32) for pair in _sample(pairs, SAMPLE_SIZE)
    ]
    sizes = Counter((mask.shape[1], mask.shape[0]) for mask in masks)
    native = _shares(masks, classes)
    present = native > 0
    ceiling = ceilings(masks, classes, image_size)
    suggested, best = None, None
    if np.any(ceiling[present] < CEILING_AT_LEAST):
        for size in _larger_sizes(image_size, sizes):
            lowest = float(np.min(ceilings(masks, classes, size)[present]))
            best = (size, lowest)
            if lowest >= CEILING_AT_LEAST:
                suggested = size
                break
    widths = typical_widths(masks, classes.num_classes)  # ignored pixels: another label
    rows = tuple(
        ClassAtScale(name, float(native[c]), float(widths[c]), float(ceiling[c]))
        for c, name in enumerate(classes.names)
    )
    return ResolutionReport(image_size, dict(sizes), rows, suggested, best)
