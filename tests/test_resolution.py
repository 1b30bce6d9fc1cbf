"""helpers.resolution: each class's IoU ceiling at the training size (issues 18 and 37)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import data, resolution, training
from helpers.layout import Classes, Pair

VESSELS = Classes(names=("background", "vessel"), colors=((0, 0, 0), (255, 0, 0)))


def _masks(folder: Path, masks: list[np.ndarray]) -> list[Pair]:
    """Write ``masks`` as PNGs; the pairs' images are never read by the report."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for index, mask in enumerate(masks):
        path = folder / f"{index}.png"
        Image.fromarray(mask.astype(np.uint8)).save(path)
        pairs.append(Pair(image=path, mask=path))
    return pairs


def _lines(count: int, height: int = 128, width: int = 128, every: int = 16) -> list[np.ndarray]:
    """Masks of 1-pixel horizontal lines (class 1) every ``every`` rows, shifted per mask."""
    masks = []
    for index in range(count):
        mask = np.zeros((height, width), np.uint8)
        mask[index % every :: every] = 1
        masks.append(mask)
    return masks


def test_shapes_at_the_training_size_keeps_every_class_and_says_nothing():
    shapes = data.load_dataset("shapes")
    report = resolution.report(
        shapes.split("train"), shapes.classes, training.CPU_CONFIG.image_size
    )
    assert report.warnings() == [] and report.erased() == [] and report.suggested_size is None
    assert report.squash_note() is None
    assert report.sizes == {(128, 128): resolution.SAMPLE_SIZE}
    assert report.scale == 0.5
    assert all(row.ceiling > 0.9 for row in report.classes)  # star: 0.91
    assert [row.name for row in report.classes] == list(shapes.classes.names)
    text = str(report)
    assert "128x128 (32)" in text and "star" in text and "Warning" not in text


def test_one_pixel_lines_shrunk_4x_are_erased_and_the_smallest_size_that_keeps_them_is_named(
    tmp_path,
):
    pairs = _masks(tmp_path, _lines(8))
    report = resolution.report(pairs, VESSELS, 32)
    (vessel,) = report.erased()
    assert vessel.name == "vessel" and vessel.ceiling < resolution.CEILING_AT_LEAST
    assert vessel.width == pytest.approx(1.0, rel=0.01)  # 1 px (a line on the border: 1 edge)
    assert 32 < report.suggested_size <= 128 and report.suggested_size % 16 == 0
    (warning,) = report.warnings()
    assert f"image_size={report.suggested_size} (IMAGE_SIZE = {report.suggested_size})" in warning
    assert f"'vessel' {vessel.ceiling:.2f}" in warning and "notebook 06" in warning
    assert f"about {(report.suggested_size / 32) ** 2:.1f}x" in warning  # the cost
    kept_there = resolution.report(pairs, VESSELS, report.suggested_size)
    assert kept_there.erased() == [] and kept_there.warnings() == []
    smaller = resolution.report(pairs, VESSELS, report.suggested_size - 16)
    assert smaller.erased(), "the suggestion is the smallest size tried that keeps every class"


def _membranes(count: int, side: int = 256, cells: int = 40, width: int = 3) -> list[np.ndarray]:
    """Electron-microscopy-like masks: the boundaries (class 1, ``width`` px) between the
    Voronoi cells of ``cells`` random points; a large share of the pixels, but thin."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:side, :side]
    masks = []
    for _ in range(count):
        points = rng.uniform(0, side, (cells, 2))
        distances = np.hypot(rows[..., None] - points[:, 0], cols[..., None] - points[:, 1])
        nearest = np.sort(distances, axis=-1)
        masks.append((nearest[..., 1] - nearest[..., 0] < width).astype(np.uint8))
    return masks


def test_thin_membranes_keep_their_pixel_share_but_not_their_iou(tmp_path):
    masks = _membranes(4)
    pairs = _masks(tmp_path, masks)
    membrane_share = np.mean([mask.mean() for mask in masks])
    shrunk = [resolution.resize_mask(m, (64, 64)).numpy() for m in masks]
    assert np.mean([mask.mean() for mask in shrunk]) > 0.75 * membrane_share  # the old measure
    report = resolution.report(pairs, VESSELS, 64)
    (membrane,) = report.erased()
    assert membrane.ceiling < resolution.CEILING_AT_LEAST and report.suggested_size > 64
    (warning,) = report.warnings()
    assert f"'vessel' {membrane.ceiling:.2f}" in warning and f"{membrane.ceiling:8.2f}" in str(
        report
    )
    assert resolution.report(pairs, VESSELS, report.suggested_size).warnings() == []


def test_no_size_up_to_the_native_one_is_said_plainly(tmp_path):
    dots = np.zeros((40, 40), np.uint8)
    dots[::3, ::3] = 1  # isolated pixels: every resize moves some of them
    report = resolution.report(_masks(tmp_path, [dots]), VESSELS, 32)
    assert report.erased() and report.suggested_size is None and report.best[0] == 48
    assert "no size up to the native one lifts every ceiling" in report.warnings()[0]


def test_images_smaller_than_the_smallest_size_are_kept_and_get_no_warning(tmp_path):
    tiny = np.zeros((20, 20), np.uint8)
    tiny[::4, ::4] = 1
    report = resolution.report(_masks(tmp_path, [tiny]), VESSELS, 32)
    assert report.classes[1].ceiling >= resolution.CEILING_AT_LEAST and report.warnings() == []


def test_typical_width_is_twice_the_area_over_the_outline():
    mask = np.zeros((40, 60), np.int32)
    mask[10:13] = 1  # a strip 3 pixels wide across the image
    mask[20:30, 20:30] = 2  # a 10 x 10 square: 2 x 100 / 40 = 5
    widths = resolution.typical_widths([mask], 3)
    np.testing.assert_allclose(widths[1:], [3.0, 5.0])
    assert resolution.typical_widths([np.zeros((4, 4), np.int32)], 1)[0] == np.inf


def test_non_square_images_are_said_to_be_squashed(tmp_path):
    wide = [np.pad(np.ones((32, 48), np.uint8), 16) for _ in range(2)]  # 80 x 64 masks
    report = resolution.report(_masks(tmp_path, wide), VESSELS, 64)
    assert report.sizes == {(80, 64): 2} and report.aspect_ratios() == (1.25, 1.25)
    assert report.warnings() == []  # squashed, not erased: train() says nothing
    note = report.squash_note()
    assert "not square (width/height 1.25 to 1.25)" in note and "squashes each to 64x64" in note
    assert note in str(report)


def test_ignored_pixels_are_in_no_class_share(tmp_path):
    classes = Classes(names=("background", "object"), colors=((0, 0, 0), (9, 9, 9)), ignore_index=9)
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :16] = 9  # half the mask ignored
    mask[:8, 16:] = 1  # a quarter of the labelled pixels
    report = resolution.report(_masks(tmp_path, [mask]), classes, 32)
    assert [row.share for row in report.classes] == [0.75, 0.25]
    assert [row.ceiling for row in report.classes] == [1.0, 1.0]


def test_train_names_an_erased_class_before_training(tmp_path, capsys):
    root = tmp_path / "lines"
    (root / "classes.json").parent.mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps(VESSELS.to_json()))
    for split, count in {"train": 4, "val": 3, "test": 3}.items():
        pairs = _masks(root / split / "masks", _lines(count, 64, 64, every=8))
        (root / split / "images").mkdir()
        for pair in pairs:
            image = np.stack([np.asarray(Image.open(pair.mask)) * 200] * 3, axis=-1)
            Image.fromarray(image.astype(np.uint8)).save(root / split / "images" / pair.mask.name)
    config = training.TrainConfig(image_size=16, epochs=1, base_filters=4, min_steps=0)

    class SaysWhenFitBegins(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            print("fit begins")

    dataset = data.load_dataset(root)
    training.train(dataset, config, run_dir=tmp_path / "run", callbacks=[SaysWhenFitBegins()])
    printed = capsys.readouterr().out
    assert "Warning: at IMAGE_SIZE 16 the resize erases" in printed
    assert printed.index("Warning: at IMAGE_SIZE 16") < printed.index("fit begins")
