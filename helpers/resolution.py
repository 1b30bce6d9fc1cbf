"""What the training size does to a dataset (taught in notebook 01; ``training.train`` warns).

:func:`report` measures a sample of masks at their native size — image sizes, aspect ratios,
each class's share of the labelled pixels and its typical width — then resizes them as the
pipeline does (:func:`helpers.pipeline.resize_mask`) and measures how much of each class is
left. A class that loses over a quarter of its pixels is *erased* by the scale: the model cannot
learn what the resize removed, so the report suggests a larger ``IMAGE_SIZE`` that keeps every
class (the smallest of ``SIZE_FACTORS`` times the training size, rounded up to a multiple of 32
and at most the native side), or training on crops at native scale (notebook 06).
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
KEEP_AT_LEAST = 0.75  # a class that keeps less of its pixel share than this is being erased
SIZE_STEP = 32  # suggested sizes are multiples of this (the U-Net needs multiples of 8)
SIZE_FACTORS = (1.5, 2, 3, 4, 6, 8)  # the sizes tried, as multiples of the training size


@dataclass(frozen=True)
class ClassAtScale:
    """One class: its share of the labelled pixels and typical width (pixels) at native size,
    and the part of its share that the training scale keeps (1.0: all of it)."""

    name: str
    share: float
    width: float
    kept: float


@dataclass(frozen=True)
class ResolutionReport:
    """Native sizes and what resizing to ``image_size`` x ``image_size`` keeps of each class."""

    image_size: int
    sizes: dict[tuple[int, int], int]  # (width, height) -> number of sampled masks
    classes: tuple[ClassAtScale, ...]
    suggested_size: int | None  # the smallest size tried that keeps every class (or None)

    @property
    def scale(self) -> float:
        """Training side / typical native side (the geometric mean of width and height)."""
        sides = [math.sqrt(w * h) for (w, h), n in self.sizes.items() for _ in range(n)]
        return self.image_size / float(np.median(sides))

    def erased(self) -> list[ClassAtScale]:
        return [c for c in self.classes if c.share > 0 and c.kept < KEEP_AT_LEAST]

    def aspect_ratios(self) -> tuple[float, float]:
        ratios = [w / h for w, h in self.sizes]
        return min(ratios), max(ratios)

    def warnings(self) -> list[str]:
        """What to change before training: classes the size erases (empty when none)."""
        erased = self.erased()
        if not erased:
            return []
        listed = ", ".join(
            f"'{c.name}' keeps {c.kept:.0%} (about {c.width:.1f} px wide, "
            f"{c.width * self.scale:.1f} px at this scale)"
            for c in erased
        )
        fix = (
            f"IMAGE_SIZE = {self.suggested_size} keeps every class"
            if self.suggested_size
            else "no size up to the native one keeps every class"
        )
        return [
            f"Warning: at IMAGE_SIZE {self.image_size} the resize erases thin or small classes "
            f"- {listed}. The model cannot learn what the resize removed. Fix: {fix}; or train "
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
            f"{'class':14s} {'share':>7s} {'width px':>9s} {'at scale':>9s} {'kept':>6s}",
        ]
        for c in self.classes:
            lines.append(
                f"{c.name:14s} {c.share:7.1%} {c.width:9.1f} {c.width * self.scale:9.1f} "
                f"{c.kept:6.0%}"
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


def _kept(masks: list[np.ndarray], classes: Classes, size: int, native: np.ndarray) -> np.ndarray:
    resized = [resize_mask(mask, (size, size)).numpy() for mask in masks]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(native > 0, _shares(resized, classes) / native, 1.0)


def report(pairs: Sequence[Pair], classes: Classes, image_size: int) -> ResolutionReport:
    """Measure what resizing the masks of ``pairs`` to ``image_size`` keeps of each class."""
    masks = [
        np.asarray(Image.open(pair.mask)).astype(np.int32) for pair in _sample(pairs, SAMPLE_SIZE)
    ]
    sizes = Counter((mask.shape[1], mask.shape[0]) for mask in masks)
    native = _shares(masks, classes)
    kept = _kept(masks, classes, image_size, native)
    suggested = None
    if np.any(kept < KEEP_AT_LEAST):
        largest = max(max(size) for size in sizes) // SIZE_STEP * SIZE_STEP
        steps = {math.ceil(image_size * f / SIZE_STEP) * SIZE_STEP for f in SIZE_FACTORS}
        candidates = sorted({min(largest, size) for size in steps})
        for size in (c for c in candidates if c > image_size):
            if np.all(_kept(masks, classes, size, native) >= KEEP_AT_LEAST):
                suggested = size
                break
    widths = typical_widths(masks, classes.num_classes)  # ignored pixels: another label
    rows = tuple(
        ClassAtScale(name, float(native[c]), float(widths[c]), float(kept[c]))
        for c, name in enumerate(classes.names)
    )
    return ResolutionReport(image_size, dict(sizes), rows, suggested)
