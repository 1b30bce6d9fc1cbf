"""Predicting images larger than the training size, tile by tile (notebook 06), and a photo of
any size at its own resolution (notebook 07).

A fully convolutional model accepts any input size, but memory does not: a 4096x4096 photo is
predicted in tiles. Tiles cut without overlap show *seams* (a pixel near a tile edge sees only
half its context); overlapping tiles whose logits are blended with a window that fades towards
the tile edges remove them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap``.

    The last tile ends exactly at ``length`` (it may overlap more); a single tile when
    ``length <= tile``.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def blend_window(tile: int, kind: str = "gaussian") -> np.ndarray:
    """A (tile, tile) weight map: ``"gaussian"`` (sigma = tile / 4), ``"linear"`` or ``"uniform"``.

    Weights are positive everywhere, so every pixel of a tile counts a little.
    """
    position = (np.arange(tile) + 0.5) / tile - 0.5  # -0.5 .. 0.5 across the tile
    if kind == "gaussian":
        profile = np.exp(-0.5 * (position / 0.25) ** 2)
    elif kind == "linear":
        profile = 1.0 - 2.0 * np.abs(position) + 1e-3
    elif kind == "uniform":
        profile = np.ones(tile)
    else:
        raise ValueError(f"kind must be 'gaussian', 'linear' or 'uniform', not {kind!r}")
    return np.outer(profile, profile).astype(np.float32)


def predict_tiled(
    predict_logits: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: int,
    overlap: int = 0,
    blend: str = "gaussian",
    batch_size: int = 8,
) -> np.ndarray:
    """Logits ``(H, W, C)`` for one image ``(H, W, 3)``, predicted tile by tile.

    ``predict_logits`` maps a batch ``(B, tile, tile, 3)`` to logits ``(B, tile, tile, C)``
    (e.g. ``lambda x: model(x, training=False)``). Tiles of ``tile`` pixels start every
    ``tile - overlap`` pixels; overlapping logits are averaged with ``blend_window(tile,
    blend)`` weights. With ``overlap=0`` and ``blend="uniform"`` this is plain tiling (seams and
    all). Images smaller than a tile are padded by reflection and cropped back.
    """
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape[:2]
    pad_y, pad_x = max(0, tile - height), max(0, tile - width)
    if pad_y or pad_x:
        image = np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="reflect")
    full_height, full_width = image.shape[:2]
    window = blend_window(tile, blend)[..., None]
    corners = [
        (top, left)
        for top in tile_starts(full_height, tile, overlap)
        for left in tile_starts(full_width, tile, overlap)
    ]
    total = weights = None
    for first in range(0, len(corners), batch_size):
        chunk = corners[first : first + batch_size]
        tiles = np.stack([image[top : top + tile, left : left + tile] for top, left in chunk])
        logits = np.asarray(predict_logits(tiles), dtype=np.float32)
        if total is None:
            total = np.zeros((full_height, full_width, logits.shape[-1]), np.float32)
            weights = np.zeros((full_height, full_width, 1), np.float32)
        for (top, left), tile_logits in zip(chunk, logits, strict=True):
            total[top : top + tile, left : left + tile] += tile_logits * window
            weights[top : top + tile, left : left + tile] += window
    return (total / weights)[:height, :width]


def load_photo(path: str | os.PathLike[str]) -> np.ndarray:
    """A photo file as uint8 RGB ``(H, W, 3)``, turned upright by its EXIF orientation tag.

    Phones store a portrait photo as a landscape image plus a tag saying "rotate me"; without
    the tag applied, the model sees (and the overlay shows) the picture on its side.
    """
    try:
        with Image.open(path) as photo:
            return np.asarray(ImageOps.exif_transpose(photo).convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"{path}: not an image this course can read ({error}). Use a PNG or JPEG file."
        ) from error


def model_input_size(height: int, width: int, side: int, multiple: int = 8) -> tuple[int, int]:
    """The size a photo is resized to: shorter side ``side``, aspect ratio kept, each side
    rounded to a multiple of ``multiple`` (what the model's poolings need)."""
    shorter = min(height, width)
    return tuple(
        max(multiple, (length * side // shorter + multiple // 2) // multiple * multiple)
        for length in (height, width)
    )


def predict_full_resolution(
    predict_logits: Callable[[np.ndarray], np.ndarray],
    photo: np.ndarray,
    side: int,
    multiple: int = 8,
    tile: int | None = None,
) -> np.ndarray:
    """Logits ``(H, W, C)`` for a uint8 photo ``(H, W, 3)`` of any size, at its own resolution.

    The photo is resized to the model's scale (:func:`model_input_size`: shorter side ``side``),
    predicted whole, or in overlapping ``tile``-pixel tiles when it is larger than a tile
    (:func:`predict_tiled`), and the **logits** (not the labels) are resized back bilinearly to
    ``(H, W)``, so the mask's outlines are smooth at full resolution.
    """
    height, width = photo.shape[:2]
    size = model_input_size(height, width, side, multiple)
    image = tf.image.resize(
        tf.cast(photo, tf.float32) / 255.0, size, method="bilinear", antialias=True
    )
    image = tf.clip_by_value(image, 0.0, 1.0).numpy()
    if tile is not None and max(size) > tile:
        logits = predict_tiled(predict_logits, image, tile, overlap=tile // 4)
    else:
        logits = np.asarray(predict_logits(image[None]), dtype=np.float32)[0]
    return tf.image.resize(logits, (height, width), method="bilinear").numpy()
