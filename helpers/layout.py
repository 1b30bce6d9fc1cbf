"""The dataset layout contract that every dataset (generated, downloaded, your own) follows.

Introduced in notebook 01. A dataset folder holds::

    <root>/classes.json                      {"names": [...], "colors": [[r, g, b], ...],
                                              "ignore_index": 255}   (ignore_index optional)
    <root>/<split>/images/<stem>.png|.jpg    RGB (grayscale / RGBA are converted by the pipeline)
    <root>/<split>/masks/<stem>.png          one channel, uint8 class ids 0..C-1 or ignore_index

or only ``images/`` and ``masks/`` (no splits), which :mod:`helpers.data` splits
deterministically. A generator writes a finished dataset with :func:`publish`, with a
``GENERATED.json`` marker that says who made it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Masks must be PNG; the other suffixes are looked for only to refuse them with a reason.
MASK_SUFFIXES = (*IMAGE_SUFFIXES, ".tif", ".tiff", ".bmp", ".gif")
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # what tf.io.decode_image reads
# Image files looked for: those it reads, and TIFF, to refuse with the conversion that fixes it.
IMAGE_FILE_SUFFIXES = (*IMAGE_SUFFIXES, ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Written by a generator (make_shapes, download_oxford_pets) into the folders it made.
GENERATOR_MARKER = "GENERATED.json"


class DatasetError(ValueError):
    """A dataset on disk breaks the layout contract; the message names the file and the fix."""


@dataclass(frozen=True)
class Classes:
    """Class names, their display colours and the label value that no loss or metric counts."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "names": list(self.names),
            "colors": [list(color) for color in self.colors],
        }
        if self.ignore_index is not None:
            document["ignore_index"] = self.ignore_index
        return document


@dataclass(frozen=True)
class Pair:
    """One training example on disk: an image file and its mask file (same stem)."""

    image: Path
    mask: Path


def read_classes(root: Path) -> Classes:
    """Read and validate ``root/classes.json`` (a UTF-8 byte-order mark is allowed)."""
    path = root / "classes.json"
    example = '{"names": ["background", "cat"], "colors": [[0, 0, 0], [255, 0, 0]]}'
    if not path.is_file():
        raise DatasetError(f"{path} is missing. Fix: create it, for example {example}")
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not UTF-8 text ({error}). Fix: save it as UTF-8.") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path} is not valid JSON ({error}). Fix: see {example}") from None
    names = document.get("names") if isinstance(document, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"{path} needs a non-empty list of class names under 'names'.")
    if len(names) > 255:
        raise DatasetError(f"{path}: at most 255 classes fit in a uint8 mask.")
    colors = document.get("colors")
    if (
        not isinstance(colors, list)
        or len(colors) != len(names)
        or not all(
            isinstance(c, list)
            and len(c) == 3
            and all(isinstance(v, int) and 0 <= v < 256 for v in c)
            for c in colors
        )
    ):
        raise DatasetError(
            f"{path} needs one [r, g, b] colour (0..255) per class under 'colors' "
            f"({len(names)} classes)."
        )
    ignore_index = document.get("ignore_index")
    if ignore_index is not None and (
        not isinstance(ignore_index, int) or not len(names) <= ignore_index <= 255
    ):
        raise DatasetError(
            f"{path}: ignore_index must be an integer from {len(names)} to 255, or absent."
        )
    _check_class_table(path, names, colors)
    return Classes(tuple(names), tuple(tuple(c) for c in colors), ignore_index)


def _check_class_table(path: Path, names: list[str], colors: list[list[int]]) -> None:
    """Refuse a single class and repeated names or colours (each would mislead silently)."""
    if len(names) < 2:
        raise DatasetError(
            f"{path} defines one class ({names[0]!r}); segmentation needs at least two (for "
            "example background and object). Fix: add the background class as class 0."
        )
    for kind, values in (("name", names), ("colour", [tuple(c) for c in colors])):
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise DatasetError(
                f"{path} repeats the class {kind}(s) {', '.join(repeated)}: classes must be "
                f"told apart in tables and pictures. Fix: give each class its own {kind}."
            )


def publish(staging: Path, root: Path, replace: bool) -> None:
    """Move a finished dataset from ``staging`` to ``root`` in one rename (``replace``: delete
    an existing ``root`` first). If another process published ``root`` meanwhile, keep theirs."""
    if replace and root.exists():
        shutil.rmtree(root)
    try:
        staging.rename(root)
    except OSError:
        if not (root / GENERATOR_MARKER).is_file():
            raise
