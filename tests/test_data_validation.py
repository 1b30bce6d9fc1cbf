"""Issue 12: bad data refused before training (every file at once, with its fix), the verdict
cached per file state, safe conversions documented, and a reader's files never deleted."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import data, layout, shapes
from helpers.layout import DatasetError
from tests.conftest import CLASSES_JSON, write_pair


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Verdicts go to a temporary data folder, never the repository's."""
    folder = tmp_path / "data_dir"
    monkeypatch.setattr(data, "DATA_DIR", folder)
    return folder


def age(root: Path, seconds: float = 60) -> None:
    """Set every file's mtime in the past, as for a dataset that was written a while ago."""
    past = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (past, past))


def count_inspections(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every pair that gets verified (decoded) from now on."""
    seen: list[Path] = []
    original = data._inspect_pair

    def counting(pair, classes, decode):
        seen.append(pair.image)
        return original(pair, classes, decode)

    monkeypatch.setattr(data, "_inspect_pair", counting)
    return seen


def flat_dataset(root: Path, count: int, classes: dict | None = None) -> Path:
    """A folder without splits holding ``count`` valid pairs."""
    root.mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps(classes or CLASSES_JSON))
    for index in range(count):
        write_pair(root, f"p{index:02d}", value=1 + index % 2)
    return root


def save_mask(path: Path, values: np.ndarray, **options) -> None:
    Image.fromarray(values.astype(np.uint8)).save(path, **options)


def save_low_bit_mask(path: Path, values: np.ndarray, bits: int) -> None:
    """A greyscale PNG of bit depth ``bits`` (1, 2 or 4), written byte by byte: Pillow before
    12 ignores ``save(bits=...)`` and writes 8 bits (Colab's Pillow 11.3 does)."""
    per_byte = 8 // bits
    lines = b""
    for row in values.astype(int):
        padded = [*row, *[0] * (-len(row) % per_byte)]
        packed = bytearray()
        for start in range(0, len(padded), per_byte):
            byte = 0
            for value in padded[start : start + per_byte]:
                byte = (byte << bits) | value
            packed.append(byte)
        lines += b"\x00" + bytes(packed)  # filter type 0 before each line

    def chunk(kind: bytes, content: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + content))
        return struct.pack(">I", len(content)) + kind + content + crc

    height, width = values.shape
    header = struct.pack(">IIBBBBB", width, height, bits, 0, 0, 0, 0)  # colour type 0: grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(lines))
        + chunk(b"IEND", b"")
    )


# --- full verification, once per dataset state -------------------------------------------------


def test_default_split_verifies_every_split_fully(make_dataset):
    root = make_dataset()
    mask = np.zeros((12, 16), np.uint8)
    mask[0, 0] = 9
    save_mask(root / "test/masks/test_1.png", mask)
    with pytest.raises(DatasetError, match=r"test_1.png contains value\(s\) \[9\]"):
        data.load_dataset(root).split("train")  # a bad test mask stops training before it starts


def test_verdict_is_cached_per_file_state(make_dataset, monkeypatch, capsys, private_data_dir):
    root = make_dataset()
    age(root)
    seen = count_inspections(monkeypatch)
    first = data.load_dataset(root)
    assert [len(first.split(name)) for name in data.SPLITS] == [3, 3, 3]
    assert len(seen) == 9, "every pair of every split once, not once per split() call"
    verdicts = list((private_data_dir / ".verified").iterdir())
    assert len(verdicts) == 1 and verdicts[0].suffix == ".json", "no temporary file left"
    assert not [p for p in root.rglob("*") if "verif" in p.name], "nothing in the dataset"

    second = data.load_dataset(root)  # another notebook: starts at once
    assert [len(second.split(name)) for name in data.SPLITS] == [3, 3, 3]
    assert len(seen) == 9
    assert capsys.readouterr().out == "", "valid data prints nothing, first run or cached"

    mask = np.zeros((12, 16), np.uint8)
    mask[0, 0] = 7
    save_mask(root / "val/masks/val_2.png", mask)  # same size as before
    age(root, seconds=30)  # an mtime older than the verdict's: only the new mtime tells
    with pytest.raises(DatasetError, match=r"val_2.png contains"):
        data.load_dataset(root).split("train")


def test_recently_written_files_are_verified_but_not_cached(make_dataset, private_data_dir):
    root = make_dataset()  # just written: mtimes too close to now to be trusted
    data.load_dataset(root).split("train")
    assert not (private_data_dir / ".verified").exists()


def test_header_mode_is_not_cached(make_dataset, private_data_dir):
    root = make_dataset()
    age(root)
    assert len(data.load_dataset(root).split("val", verify="header")) == 3
    assert not (private_data_dir / ".verified").exists()


def test_cache_that_cannot_be_written_is_skipped(make_dataset, monkeypatch, tmp_path):
    root = make_dataset()
    age(root)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(data, "DATA_DIR", blocker)  # data/.verified cannot be created
    assert len(data.load_dataset(root).split("train")) == 3


def test_verdicts_of_removed_datasets_are_pruned(make_dataset, tmp_path, private_data_dir):
    gone = flat_dataset(tmp_path / "gone", 30)
    age(gone)
    data.load_dataset(gone).split("train")
    (gone / "classes.json").unlink()
    for path in sorted(gone.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    gone.rmdir()
    (private_data_dir / ".verified" / "junk.json").write_text("{not json")
    root = make_dataset()
    age(root)
    data.load_dataset(root).split("train")
    assert len(list((private_data_dir / ".verified").iterdir())) == 1


def test_every_bad_file_is_reported_at_once(make_dataset):
    root = make_dataset(pairs=6)
    save_mask(root / "train/masks/train_1.png", np.full((12, 16), 7))
    (root / "val/images/val_0.png").write_bytes(b"not a png")
    Image.new("RGB", (16, 12)).save(root / "test/masks/test_2.png")
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("val")
    message = str(caught.value)
    assert message.startswith("3 problems in ")
    for name, fix in [("train_1.png", "value_map"), ("val_0.png", "corrupt"), ("test_2", "colors")]:
        assert name in message and fix in message


def test_listing_and_content_problems_are_reported_together(make_dataset):
    root = make_dataset()
    (root / "train/masks/train_2.png").unlink()  # an image without its mask
    save_mask(root / "test/masks/test_0.png", np.full((12, 16), 7))
    with pytest.raises(DatasetError, match=r"(?s)2 problems.*No mask for 1 file.*test_0.png"):
        data.load_dataset(root).split("val")


def test_many_bad_files_are_all_named_and_each_fix_said_once(make_dataset):
    root = make_dataset(pairs=6)
    for split in data.SPLITS:
        for index in range(6):
            save_mask(root / f"{split}/masks/{split}_{index}.png", np.full((12, 16), 7))
    (root / "val/images/val_3.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("test")
    message = str(caught.value)
    assert message.startswith("18 problems")
    assert message.count("value_map") == 1 and message.count("corrupt") == 1
    assert "The same fix applies to 16 more: test/masks/test_0.png, " in message
    shown = [f"masks/{s}_{i}.png" for s in data.SPLITS for i in range(6)]
    shown = [name for name in shown if name in message]
    assert len(shown) == 1 + data.SHOWN_NAMES and "and 11 more" in message  # grouped, counted
    assert "val/images/val_3.png" in message and "val/masks/val_3.png" not in message


# --- silent before, refused now ------------------------------------------------------------------


def test_binary_0_255_mask_under_ignore_index_is_refused(make_dataset):
    root = make_dataset()
    binary = np.zeros((12, 16), np.uint8)
    binary[:6, :8] = 255  # the object exported as 255, which classes.json ignores
    save_mask(root / "train/masks/train_0.png", binary)
    with pytest.raises(DatasetError, match=r"train_0.png holds only class 0 and ignore_index 255"):
        data.load_dataset(root).split("train")
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("val")
    message = str(caught.value)
    assert "Fix: if your masks are 0/255 (object = 255), convert them: convert_mask(path, " in (
        message
    )


def test_fifteen_0_255_masks_get_one_fix_and_a_count(make_dataset):
    root = make_dataset(pairs=5)
    binary = np.zeros((12, 16), np.uint8)
    binary[:6, :8] = 255
    for split in data.SPLITS:
        for index in range(5):
            save_mask(root / f"{split}/masks/{split}_{index}.png", binary)
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("train")
    message = str(caught.value)
    assert message.startswith("15 problems") and message.count("value_map={255: 1}") == 1
    assert "The same fix applies to 14 more: " in message and "and 9 more" in message
    assert len(message.splitlines()) == 3


def test_fully_ignored_mask_is_refused_with_remove_the_pair_first(make_dataset):
    root = make_dataset()
    save_mask(root / "val/masks/val_0.png", np.full((12, 16), 255))
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("val")
    message = str(caught.value)
    assert "val_0.png is ignore_index 255 everywhere: nothing in it is labelled" in message
    assert "Fix: remove the pair (image and mask), or label the image." in message
    assert "value_map" not in message, "converting it would label the whole image"


def test_tiff_images_are_refused_with_the_conversion_that_fixes_them(make_dataset):
    root = make_dataset()
    for split in data.SPLITS:
        for png in sorted((root / split / "images").glob("*.png")):
            Image.open(png).save(png.with_suffix(".tif"))
            png.unlink()
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("train")
    message = str(caught.value)
    assert "No image for" not in message, "the TIFF images beside the masks are found"
    assert "TIFF images are not read" in message and "helpers.data.convert_images(" in message
    assert message.count("TIFF images are not read") == 3  # one fix per folder
    for split in data.SPLITS:
        written = data.convert_images(root / split / "images")
        assert [p.suffix for p in written] == [".png"] * 3
        assert sorted(p.name for p in (root / split / "images_tiff").iterdir()) == [
            f"{split}_{i}.tif" for i in range(3)
        ]
    assert len(data.load_dataset(root).split("train")) == 3


def test_convert_images_scales_16_bit_and_never_overwrites(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    deep = np.zeros((8, 8), np.uint16)
    deep[:4] = 4000
    Image.fromarray(deep).save(folder / "a.tif")
    (png,) = data.convert_images(folder)
    assert np.asarray(Image.open(png)).max() == 255 and not (folder / "a.tif").exists()
    Image.fromarray(deep).save(folder / "a.tif")
    with pytest.raises(FileExistsError, match="never overwrites"):
        data.convert_images(folder)
    assert (folder / "a.tif").exists() and (tmp_path / "images_tiff" / "a.tif").exists()


def test_class_that_appears_only_under_ignore_is_refused(make_dataset):
    root = make_dataset()
    for split in data.SPLITS:
        for index in range(3):
            mask = np.zeros((12, 16), np.uint8)
            mask[:3, :3], mask[6:, 8:] = 1, 255  # class "b" (2) is never labelled
            save_mask(root / f"{split}/masks/{split}_{index}.png", mask)
    with pytest.raises(DatasetError, match=r"class\(es\) b never appear outside ignored pixels"):
        data.load_dataset(root).split("train")


def test_classes_missing_without_ignored_pixels_are_accepted(make_dataset):
    root = make_dataset(pairs=1)  # class "b" never appears, and nothing is ignored: fine
    assert len(data.load_dataset(root).split("train")) == 1


def test_two_images_with_one_stem_are_refused(make_dataset):
    root = make_dataset()
    Image.new("RGB", (16, 12)).save(root / "train/images/train_0.jpg")
    with pytest.raises(
        DatasetError, match=r"share the stem 'train_0': train_0.jpg and train_0.png"
    ):
        data.load_dataset(root).split("train")


def test_stale_tif_mask_beside_a_png_is_refused(make_dataset):
    root = make_dataset()
    Image.new("L", (16, 12)).save(root / "val/masks/val_1.tif")
    with pytest.raises(DatasetError, match=r"val_1.png and val_1.tif.*delete or rename the stale"):
        data.load_dataset(root).split("train")


def test_split_folders_beside_top_level_images_are_refused(make_dataset):
    root = make_dataset()
    write_pair(root, "loose")
    with pytest.raises(
        DatasetError, match=r"both split folders .* and top-level images/ \+ masks/"
    ):
        data.load_dataset(root).split("train")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_photo_with_an_exif_orientation_is_refused(make_dataset, suffix):
    root = make_dataset()
    exif = Image.Exif()
    exif[data.EXIF_ORIENTATION] = 6  # "rotate 90 degrees to display"
    (root / "train/images/train_2.png").unlink()
    Image.new("RGB", (16, 12)).save(root / f"train/images/train_2{suffix}", exif=exif)
    with pytest.raises(DatasetError, match=r"train_2\S* has an EXIF orientation tag \(6\).*exif_"):
        data.load_dataset(root).split("train")


def test_upright_exif_orientation_is_accepted(make_dataset):
    root = make_dataset()
    exif = Image.Exif()
    exif[data.EXIF_ORIENTATION] = 1
    (root / "train/images/train_2.png").unlink()
    Image.new("RGB", (16, 12)).save(root / "train/images/train_2.jpg", exif=exif)
    assert len(data.load_dataset(root).split("train")) == 3


@pytest.mark.parametrize(("suffix", "kind"), [(".tif", "TIFF"), (".bmp", "BMP"), (".gif", "GIF")])
def test_masks_tensorflow_cannot_decode_are_refused_up_front(make_dataset, suffix, kind):
    root = make_dataset()
    (root / "test/masks/test_0.png").unlink()
    Image.new("L", (16, 12)).save(root / f"test/masks/test_0{suffix}")
    with pytest.raises(DatasetError, match=rf"test_0{suffix} is a {kind} file.*PNG masks only"):
        data.load_dataset(root).split("test")


def test_image_in_a_format_tensorflow_cannot_decode_is_refused(make_dataset):
    root = make_dataset()
    Image.new("RGB", (16, 12)).save(root / "test/images/test_0.png", format="TIFF")
    with pytest.raises(DatasetError, match=r"test_0.png is a TIFF file.*save it as PNG or JPEG"):
        data.load_dataset(root).split("test")


@pytest.mark.parametrize(("bits", "scale"), [(4, 17), (2, 85)])
def test_low_bit_grey_masks_are_refused_with_the_reason(make_dataset, bits, scale):
    root = make_dataset()
    mask = np.zeros((12, 16), np.uint8)
    mask[:4, :4] = 1
    save_low_bit_mask(root / "val/masks/val_1.png", mask, bits=bits)
    with Image.open(root / "val/masks/val_1.png") as written:  # the file is what it claims
        assert np.array(written).max() == scale
    message = rf"val_1.png is a {bits}-bit greyscale PNG.*come back as {scale}, {2 * scale}"
    with pytest.raises(DatasetError, match=message):
        data.load_dataset(root).split("val")


def test_one_bit_mask_is_refused_with_the_conversion(make_dataset):
    root = make_dataset()
    Image.new("1", (16, 12)).save(root / "val/masks/val_1.png")
    with pytest.raises(DatasetError, match=r"1-bit .* value_map=\{255: 1\}"):
        data.load_dataset(root).split("val")


# --- small splits and the reader's split fractions -----------------------------------------------


def test_fifteen_pairs_warn_about_a_tiny_split_once(tmp_path, capsys):
    root = flat_dataset(tmp_path / "fifteen", 15)
    dataset = data.load_dataset(root)
    sizes = {name: len(dataset.split(name)) for name in data.SPLITS}
    assert sizes == {"train": 12, "val": 1, "test": 2}
    printed = capsys.readouterr().out
    assert printed == f"Note: {dataset.notes[0]}\n", "one note, printed once"
    assert "the val (1 pair(s)) and test (2 pair(s)) split(s) of fifteen are too small" in printed
    assert "split_fractions=(0.6, 0.2)" in printed

    wider = data.load_dataset(root, split_fractions=(0.6, 0.2))
    sizes = {name: len(wider.split(name)) for name in data.SPLITS}
    assert sum(sizes.values()) == 15 and min(sizes.values()) >= data.MIN_EVAL_PAIRS
    assert wider.notes == [] and capsys.readouterr().out == ""


def test_split_fractions_are_stable_and_checked(tmp_path, make_dataset):
    root = flat_dataset(tmp_path / "flat", 40)
    default = data.load_dataset(root)
    wider = data.load_dataset(root, split_fractions=(0.5, 0.25))
    train = {p.image.stem for p in default.split("train")}
    assert {p.image.stem for p in wider.split("train")} < train, "a smaller train is a subset"
    for bad in [(0, 0.5), (0.9, 0.2), (0.5, -0.1)]:
        with pytest.raises(DatasetError, match=r"must be \(train, val\) with train > 0"):
            data.load_dataset(root, split_fractions=bad)
    with pytest.raises(DatasetError, match="has its own train/val/test folders"):
        data.load_dataset(make_dataset(), split_fractions=(0.7, 0.15))


def test_grayscale_images_are_noted_once_with_a_count(tmp_path, capsys):
    root = flat_dataset(tmp_path / "grey", 40)
    for index in range(15):
        path = root / "images" / f"p{index:02d}.png"
        Image.open(path).convert("L").save(path)
    dataset = data.load_dataset(root)
    for name in data.SPLITS:
        dataset.split(name)
    printed = capsys.readouterr().out
    assert printed.count("not RGB") == 1 and "15 image(s) are not RGB" in printed
    assert [note for note in dataset.notes if "not RGB" in note] == [
        printed.split("Note: ")[1][:-1]
    ]


# --- the right fix in the message ----------------------------------------------------------------


def test_unreadable_file_is_a_permission_problem_not_corruption(make_dataset, monkeypatch):
    root = make_dataset()
    locked = root / "train/images/train_1.png"
    original = Image.open

    def guarded_open(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(data.Image, "open", guarded_open)
    with pytest.raises(DatasetError) as caught:
        data.load_dataset(root).split("train")
    message = str(caught.value)
    assert "train_1.png cannot be read: permission denied" in message and "chmod" in message
    assert "corrupt" not in message and "delete" not in message


def test_non_utf8_file_name_is_named_with_the_fix(tmp_path):
    root = flat_dataset(tmp_path / "flat", 12)
    raw = os.fsencode(root / "images") + b"/caf\xe9.png"
    Image.new("RGB", (16, 12)).save(os.fsdecode(raw))
    with pytest.raises(DatasetError, match=r"b'caf\\xe9.png' in .* not valid UTF-8.*rename"):
        data.load_dataset(root).split("train")


def test_classes_json_with_a_byte_order_mark_is_read(make_dataset):
    root = make_dataset()
    (root / "classes.json").write_text(json.dumps(CLASSES_JSON), encoding="utf-8-sig")
    assert data.load_dataset(root).classes.names == ("background", "a", "b")


def test_classes_json_in_another_encoding_says_so(make_dataset):
    root = make_dataset()
    (root / "classes.json").write_bytes('{"names": ["caf\u00e9"]}'.encode("latin-1"))
    with pytest.raises(DatasetError, match=r"is not UTF-8 text.*save it as UTF-8"):
        data.load_dataset(root)


@pytest.mark.parametrize(
    ("names", "colors", "message"),
    [
        (["bg", "cat", "cat"], [[0, 0, 0], [1, 1, 1], [2, 2, 2]], "repeats the class name.*cat"),
        (["bg", "cat", "dog"], [[0, 0, 0], [9, 9, 9], [9, 9, 9]], r"colour\(s\) \(9, 9, 9\)"),
        (["object"], [[255, 0, 0]], "defines one class .*at least two"),
    ],
)
def test_ambiguous_class_tables_are_refused(make_dataset, names, colors, message):
    root = make_dataset(classes={"names": names, "colors": colors})
    with pytest.raises(DatasetError, match=message):
        data.load_dataset(root)


@pytest.mark.parametrize("times_the_limit", [1.5, 3])  # PIL warns above the limit, fails at 2x
def test_decompression_bomb_names_the_file(make_dataset, monkeypatch, times_the_limit):
    root = make_dataset()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(16 * 12 / times_the_limit))
    with pytest.raises(DatasetError, match=r"train_0.png is too large to open safely.*MAX_IMAGE"):
        data.load_dataset(root).split("train")


# --- the generated dataset -----------------------------------------------------------------------


def pixel_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(np.asarray(Image.open(path)).tobytes())
    return digest.hexdigest()


def test_generated_shapes_pass_verification_silently_and_unchanged(tmp_path, capsys):
    sizes = {"train": 3, "val": 2, "test": 2}
    root = shapes.make_shapes(tmp_path / "s", split_sizes=sizes, image_size=32, seed=5)
    # Computed with make_shapes before issue 12: the generator's output did not change.
    assert pixel_digest(root) == "c817bc21df407340ac4ead1bcf438290e0358fa3c8659bc5756451572457c465"
    big = shapes.make_shapes(tmp_path / "big", split_sizes={"train": 40, "val": 8, "test": 8})
    dataset = data.load_dataset(big)
    assert [len(dataset.split(name)) for name in data.SPLITS] == [40, 8, 8]
    assert dataset.notes == [] and capsys.readouterr().out == ""


def _small_make_shapes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    original = shapes.make_shapes

    def small(root, overwrite=False):
        sizes = {"train": 2, "val": 1, "test": 1}
        return original(root, split_sizes=sizes, image_size=16, overwrite=overwrite)

    monkeypatch.setattr(shapes, "make_shapes", small)
    return small


def test_regenerating_outdated_shapes_moves_the_readers_files_aside(
    monkeypatch, capsys, private_data_dir
):
    _small_make_shapes(monkeypatch)
    root = data.load_dataset("shapes").root
    marker = root / layout.GENERATOR_MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "version": 0}))
    (root / "train/images/mine.png").write_bytes(b"my photo")
    (root / "notes").mkdir()
    (root / "notes/todo.txt").write_text("keep me")
    capsys.readouterr()

    data.load_dataset("shapes")
    assert json.loads(marker.read_text())["version"] == shapes.SHAPES_VERSION
    (kept,) = private_data_dir.glob("shapes-kept-*")
    assert (kept / "train/images/mine.png").read_bytes() == b"my photo"
    assert (kept / "notes/todo.txt").read_text() == "keep me"
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*.*")) == [
        "notes/todo.txt",
        "train/images/mine.png",
    ], "only the reader's files are moved; the generator's are replaced"
    assert f"Moved 2 file(s) that make_shapes did not write from {root} to {kept}" in (
        capsys.readouterr().out
    )
    assert not (root / "notes").exists() and not (root / "train/images/mine.png").exists()


def test_regenerating_without_foreign_files_moves_nothing(tmp_path, capsys):
    root = shapes.make_shapes(tmp_path / "s", split_sizes={"train": 3}, image_size=16)
    shapes.make_shapes(root, split_sizes={"train": 1}, image_size=16, overwrite=True)
    assert not list(tmp_path.glob("*kept*"))
    assert "Moved" not in capsys.readouterr().out


def test_empty_split_of_a_folder_without_splits_suggests_fractions(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    (root / "classes.json").write_text(json.dumps(CLASSES_JSON))
    for index in range(15):
        write_pair(root, f"photo_{index:02d}", value=1 + index % 2)  # hashes put none in val
    assert len(data.load_dataset(root).split("val")) == 1, "an empty val split takes one pair"
    with pytest.raises(
        DatasetError, match=r"Split 'val' .* is empty.*split_fractions=\(0.6, 0.2\)"
    ):
        data.load_dataset(root, split_fractions=(0.9, 0.0)).split("val")
