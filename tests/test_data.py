"""The layout contract (helpers.layout), every bad input's message (helpers.data) and the
shapes generator (helpers.shapes)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import data, layout, shapes
from helpers.layout import DatasetError
from tests.conftest import CLASSES_JSON, write_pair


def test_valid_dataset_loads_sorted_pairs(make_dataset):
    root = make_dataset(pairs=3)
    dataset = data.load_dataset(root)
    assert dataset.name == "dataset"
    assert dataset.classes.names == ("background", "a", "b")
    assert dataset.classes.ignore_index == 255
    for split in data.SPLITS:
        pairs = dataset.split(split, verify="full")
        assert [p.image.stem for p in pairs] == [f"{split}_{i}" for i in range(3)]
        assert all(p.image.stem == p.mask.stem for p in pairs)
    assert dataset.notes == []


def test_folder_without_splits_is_split_deterministically(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    (root / "classes.json").write_text(json.dumps(CLASSES_JSON))
    for index in range(60):
        write_pair(root, f"photo_{index:03d}")
    dataset = data.load_dataset(root)
    splits = {name: dataset.split(name) for name in data.SPLITS}
    stems = [p.image.stem for pairs in splits.values() for p in pairs]
    assert sorted(stems) == [f"photo_{i:03d}" for i in range(60)]  # each pair exactly once
    assert len(splits["train"]) > len(splits["val"]) > 0 and len(splits["test"]) > 0
    # Adding files never moves an existing pair to another split.
    write_pair(root, "photo_zzz")
    again = data.load_dataset(root)
    for name, pairs in splits.items():
        assert set(p.image.stem for p in pairs) <= set(p.image.stem for p in again.split(name))


def test_unknown_split_and_verify_mode(make_dataset):
    dataset = data.load_dataset(make_dataset())
    with pytest.raises(DatasetError, match="Unknown split 'training'"):
        dataset.split("training")
    with pytest.raises(ValueError, match="verify must be"):
        dataset.split("train", verify="all")


# --- bad input: each one a clear message naming the file and the fix ---------------------------


def test_missing_path_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DatasetError, match=r"not found .*does-not-exist.*Fix: pass 'shapes'"):
        data.load_dataset(tmp_path / "does-not-exist")


def test_missing_classes_json(make_dataset):
    root = make_dataset()
    (root / "classes.json").unlink()
    with pytest.raises(DatasetError, match=r"classes.json is missing. Fix: create it"):
        data.load_dataset(root)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"colors": []}', "non-empty list of class names"),
        ('{"names": ["a", "b"], "colors": [[0, 0, 0]]}', r"one \[r, g, b\] colour"),
        ('{"names": ["a"], "colors": [[0, 0, 300]]}', r"one \[r, g, b\] colour"),
        ('{"names": ["a", "b"], "colors": [[0,0,0],[1,1,1]], "ignore_index": 1}', "ignore_index"),
    ],
)
def test_malformed_classes_json(make_dataset, content, message):
    root = make_dataset()
    (root / "classes.json").write_text(content)
    with pytest.raises(DatasetError, match=message):
        data.load_dataset(root)


def test_too_many_classes(make_dataset):
    names = [f"c{i}" for i in range(256)]
    root = make_dataset(classes={"names": names, "colors": [[0, 0, 0]] * 256})
    with pytest.raises(DatasetError, match="at most 255 classes"):
        data.load_dataset(root)


def test_image_and_mask_sizes_differ(make_dataset):
    root = make_dataset()
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(root / "train/masks/train_1.png")
    expected = r"train_1.png is 16x12 but its mask .* is 7x5.*resize_mask"
    with pytest.raises(DatasetError, match=expected):
        data.load_dataset(root).split("train")


def test_mask_value_out_of_range(make_dataset):
    root = make_dataset()
    mask = np.zeros((12, 16), np.uint8)
    mask[0, :3] = 7
    Image.fromarray(mask).save(root / "val/masks/val_0.png")
    dataset = data.load_dataset(root)
    dataset.split("val", verify="header")  # the header check cannot see values
    for verify in ("full", None):  # the default verifies fully since issue 12
        with pytest.raises(
            DatasetError, match=r"val_0.png contains value\(s\) \[7\] \(3 pixels\).*3 classes"
        ):
            dataset.split("val", **({"verify": verify} if verify else {}))


def test_ignore_index_is_an_allowed_mask_value(make_dataset):
    root = make_dataset()
    mask = np.full((12, 16), 255, np.uint8)
    mask[:3, :4] = 1  # since issue 12 a mask whose only labels are ignored is refused
    Image.fromarray(mask).save(root / "val/masks/val_0.png")
    data.load_dataset(root).split("val", verify="full")


def test_without_ignore_index_255_is_refused(make_dataset):
    classes = {key: value for key, value in CLASSES_JSON.items() if key != "ignore_index"}
    root = make_dataset(classes=classes)
    Image.fromarray(np.full((12, 16), 255, np.uint8)).save(root / "val/masks/val_0.png")
    with pytest.raises(DatasetError, match=r"value_map=\{255: 1\}"):
        data.load_dataset(root).split("val", verify="full")


def test_rgb_colour_coded_mask(make_dataset):
    root = make_dataset()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(root / "train/masks/train_0.png")
    with pytest.raises(DatasetError, match=r"train_0.png has colour channels.*convert_mask"):
        data.load_dataset(root).split("train")


def test_palette_mask(make_dataset):
    root = make_dataset()
    palette_mask = Image.fromarray(np.zeros((12, 16), np.uint8)).convert("P")
    palette_mask.save(root / "train/masks/train_0.png")
    with pytest.raises(DatasetError, match=r"palette PNG \(mode P\).*mode='palette'"):
        data.load_dataset(root).split("train")


def test_16_bit_mask(make_dataset):
    root = make_dataset()
    Image.fromarray(np.zeros((12, 16), np.uint16)).save(root / "train/masks/train_0.png")
    with pytest.raises(DatasetError, match=r"train_0.png has I;16 pixels \(16/32-bit\)"):
        data.load_dataset(root).split("train")


def test_two_channel_mask(make_dataset):
    root = make_dataset()
    Image.new("LA", (16, 12)).save(root / "train/masks/train_0.png")
    with pytest.raises(DatasetError, match="has mode LA; a mask must be"):
        data.load_dataset(root).split("train")


def test_jpeg_mask_is_refused_with_a_reason(make_dataset):
    root = make_dataset()
    (root / "train/masks/train_0.png").unlink()
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(root / "train/masks/train_0.jpg")
    with pytest.raises(DatasetError, match=r"train_0.jpg is a JPEG.*lossy"):
        data.load_dataset(root).split("train")


def test_grayscale_and_rgba_images_are_converted_with_a_note(make_dataset):
    root = make_dataset()
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(root / "train/images/train_0.png")
    Image.new("RGBA", (16, 12)).save(root / "train/images/train_1.png")
    dataset = data.load_dataset(root)
    dataset.split("train", verify="full")
    assert len(dataset.notes) == 2
    assert "train_0.png: mode L" in dataset.notes[0] and "converts them to RGB" in dataset.notes[0]
    assert "mode RGBA" in dataset.notes[1]


def test_unsupported_image_mode(make_dataset):
    root = make_dataset()
    Image.new("1", (16, 12)).save(root / "train/images/train_0.png")
    with pytest.raises(DatasetError, match="unsupported mode 1"):
        data.load_dataset(root).split("train")


def test_truncated_png(make_dataset):
    root = make_dataset()
    path = root / "test/images/test_2.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 16, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-60])
    with pytest.raises(DatasetError, match=r"image file .*test_2.png is corrupt or truncated"):
        data.load_dataset(root).split("test", verify="full")


def test_corrupt_file(make_dataset):
    root = make_dataset()
    (root / "test/masks/test_0.png").write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match=r"mask file .*test_0.png is corrupt"):
        data.load_dataset(root).split("test")


def test_image_without_mask(make_dataset):
    root = make_dataset()
    (root / "train/masks/train_2.png").unlink()
    with pytest.raises(
        DatasetError, match=r"No mask for 1 file\(s\) .*train_2.png.*same file name"
    ):
        data.load_dataset(root).split("train")


def test_mask_without_image(make_dataset):
    root = make_dataset()
    for index in range(7):
        write_pair(root / "val", f"extra_{index}")
        (root / f"val/images/extra_{index}.png").unlink()
    with pytest.raises(DatasetError, match=r"No image for 7 file\(s\).*and 2 more"):
        data.load_dataset(root).split("val")


def test_empty_split(make_dataset):
    root = make_dataset()
    for path in (root / "test").rglob("*.png"):
        path.unlink()
    with pytest.raises(DatasetError, match=r"Split 'test' of .* is empty"):
        data.load_dataset(root).split("test")


def test_missing_split_and_missing_masks_folder(make_dataset):
    root = make_dataset()
    for path in sorted((root / "test").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "test").rmdir()
    with pytest.raises(DatasetError, match="has no test/ folder"):
        data.load_dataset(root).split("test")
    for path in (root / "val/masks").iterdir():
        path.unlink()
    (root / "val/masks").rmdir()
    with pytest.raises(DatasetError, match=r"val/masks is missing"):
        data.load_dataset(root).split("val")


# --- explicit conversions --------------------------------------------------------------------


def test_convert_mask_value_map_and_no_overwrite(tmp_path):
    source = tmp_path / "binary.png"
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(source)
    output = data.convert_mask(source, tmp_path / "out" / "binary.png", value_map={255: 1})
    assert np.asarray(Image.open(output)).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(FileExistsError, match="never overwrites"):
        data.convert_mask(source, output, value_map={255: 1})
    with pytest.raises(ValueError, match="exactly one"):
        data.convert_mask(source, tmp_path / "x.png")


def test_convert_mask_from_colours_and_palette(tmp_path):
    colors = ((0, 0, 0), (255, 0, 0), (0, 0, 255))
    rgb = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 0, 255], [255, 0, 0]]], np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    output = data.convert_mask(tmp_path / "rgb.png", tmp_path / "ids.png", colors=colors)
    assert np.asarray(Image.open(output)).tolist() == [[0, 1], [2, 1]]

    rgb[0, 0] = (9, 9, 9)
    Image.fromarray(rgb).save(tmp_path / "rgb_bad.png")
    with pytest.raises(DatasetError, match=r"colours not in the colour table: \[\(9, 9, 9\)\]"):
        data.convert_mask(tmp_path / "rgb_bad.png", tmp_path / "bad.png", colors=colors)

    palette = Image.fromarray(np.array([[0, 2], [1, 1]], np.uint8), mode="L").convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    palette.save(tmp_path / "palette.png")
    output = data.convert_mask(tmp_path / "palette.png", tmp_path / "p_ids.png", mode="palette")
    assert np.asarray(Image.open(output)).tolist() == [[0, 2], [1, 1]]
    with pytest.raises(DatasetError, match="not a palette PNG"):
        data.convert_mask(tmp_path / "rgb.png", tmp_path / "p2.png", mode="palette")


def test_class_pixel_counts_skips_ignore(make_dataset):
    root = make_dataset(pairs=2)
    mask = np.zeros((12, 16), np.uint8)
    mask[0, 0] = 255
    mask[1, :4] = 2
    Image.fromarray(mask).save(root / "train/masks/train_0.png")
    pairs = data.load_dataset(root).split("train")
    counts = data.class_pixel_counts(pairs, 3)
    # train_1 has a 6x8 block of class 2; train_0 now 4 pixels of class 2 and one ignored pixel.
    assert counts.tolist() == [12 * 16 - 5 + 12 * 16 - 48, 0, 48 + 4]


# --- the shapes generator ------------------------------------------------------------------


def test_make_shapes_is_deterministic_complete_and_valid(tmp_path):
    sizes = {"train": 6, "val": 2, "test": 2}
    first = shapes.make_shapes(tmp_path / "a", split_sizes=sizes, image_size=48, seed=3)
    second = shapes.make_shapes(tmp_path / "b", split_sizes=sizes, image_size=48, seed=3)
    dataset = data.load_dataset(first)
    assert dataset.classes == shapes.SHAPES_CLASSES
    for split, count in sizes.items():
        pairs = dataset.split(split, verify="full")
        assert len(pairs) == count
        for pair in pairs:
            other = second / split / "images" / pair.image.name
            assert np.array_equal(np.asarray(Image.open(pair.image)), np.asarray(Image.open(other)))
            image = Image.open(pair.image)
            assert image.mode == "RGB" and image.size == (48, 48)
    assert not list(tmp_path.glob(".*partial*")), "the staging folder must be gone"


def test_shapes_scene_classes_and_imbalance():
    rng = np.random.default_rng(0)
    counts = np.zeros(5, np.int64)
    for _ in range(60):
        image, mask = shapes.shapes_scene(rng, 64)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert mask.shape == (64, 64) and mask.dtype == np.uint8
        counts += np.bincount(mask.ravel(), minlength=5)
    shares = counts / counts.sum()
    assert shares[0] > 0.7, "background dominates"
    assert 0 < shares[4] < min(shares[1:4]) / 4, "star is the rare class"


def test_make_shapes_never_overwrites_without_being_asked(tmp_path):
    root = shapes.make_shapes(tmp_path / "s", split_sizes={"train": 1}, image_size=16)
    with pytest.raises(FileExistsError, match=r"kept as it is\. Pass overwrite=True"):
        shapes.make_shapes(root, split_sizes={"train": 1}, image_size=16)
    marker = root / layout.GENERATOR_MARKER
    made = json.loads(marker.read_text())
    marker.write_text(json.dumps({**made, "generator": "helpers.data.make_shapes"}))
    shapes.make_shapes(root, split_sizes={"train": 2}, image_size=16, overwrite=True)
    assert len(list((root / "train/images").iterdir())) == 2, "the name before the split counts"

    user_folder = tmp_path / "mine"
    user_folder.mkdir()
    (user_folder / "precious.txt").write_text("keep me")
    (other := tmp_path / "other").mkdir()  # made by another generator, e.g. download_oxford_pets
    (other / layout.GENERATOR_MARKER).write_text(json.dumps({**made, "generator": "elsewhere"}))
    for folder in (user_folder, other):
        with pytest.raises(FileExistsError, match="not made by make_shapes; it is never replaced"):
            shapes.make_shapes(folder, overwrite=True)
    assert (user_folder / "precious.txt").read_text() == "keep me"


def test_shapes_that_another_process_published_meanwhile_are_kept_not_replaced(
    tmp_path, monkeypatch
):
    """Two notebooks that start at once both generate `shapes`; the second must not delete the
    first one's dataset, which a notebook may be reading already."""
    root, theirs = tmp_path / "shapes", tmp_path / "theirs"
    shapes.make_shapes(theirs, split_sizes={"train": 2}, image_size=16, seed=1)
    (theirs / "train/images/open_in_a_notebook.txt").write_text("being read")
    original, published = shapes.shapes_scene, threading.Lock()

    def scene_while_the_other_process_publishes(rng, size, object_scale=None):
        with published:
            if theirs.exists():
                theirs.rename(root)
        return original(rng, size, object_scale)

    monkeypatch.setattr(shapes, "shapes_scene", scene_while_the_other_process_publishes)
    assert shapes.make_shapes(root, split_sizes={"train": 3}, image_size=16, seed=2) == root
    assert (root / "train/images/open_in_a_notebook.txt").read_text() == "being read"
    assert json.loads((root / layout.GENERATOR_MARKER).read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes"]  # nothing moved aside or left


def test_interrupted_generation_leaves_no_dataset(tmp_path, monkeypatch):
    calls = {"count": 0}
    original = shapes.shapes_scene

    def failing_scene(rng, size, object_scale=None):
        calls["count"] += 1
        if calls["count"] == 3:
            raise KeyboardInterrupt
        return original(rng, size, object_scale)

    monkeypatch.setattr(shapes, "shapes_scene", failing_scene)
    with pytest.raises(KeyboardInterrupt):
        shapes.make_shapes(tmp_path / "s", split_sizes={"train": 5}, image_size=16)
    assert not (tmp_path / "s").exists()
    assert list(tmp_path.iterdir()) == []


def test_load_dataset_generates_shapes_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    created = []

    def small_make_shapes(root):
        created.append(Path(root))
        return original(root, split_sizes={"train": 2, "val": 1, "test": 1}, image_size=16)

    original = shapes.make_shapes
    monkeypatch.setattr(shapes, "make_shapes", small_make_shapes)
    dataset = data.load_dataset("shapes")
    assert created == [tmp_path / "shapes"]
    assert len(dataset.split("train", verify="full")) == 2
    data.load_dataset("shapes")
    assert len(created) == 1, "an existing dataset is reused, not regenerated"


def test_load_dataset_regenerates_shapes_from_an_older_generator_only(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    original = shapes.make_shapes
    monkeypatch.setattr(
        shapes,
        "make_shapes",
        lambda root, overwrite=False: original(
            root, split_sizes={"train": 2, "val": 1, "test": 1}, image_size=16, overwrite=overwrite
        ),
    )
    root = data.load_dataset("shapes").root
    marker = root / layout.GENERATOR_MARKER
    made = json.loads(marker.read_text())
    assert made["version"] == shapes.SHAPES_VERSION
    # made by an older make_shapes, before it moved from helpers.data to helpers.shapes
    older = {"generator": "helpers.data.make_shapes", "version": shapes.SHAPES_VERSION - 1}
    marker.write_text(json.dumps({**made, **older}))
    stale = root / "train" / "images" / "stale.txt"
    stale.write_text("from the old generator")
    data.load_dataset("shapes")
    assert json.loads(marker.read_text())["version"] == shapes.SHAPES_VERSION
    assert not stale.exists(), "the outdated copy was replaced"

    readers = tmp_path / "readers" / "shapes"  # a folder make_shapes did not write: kept
    shutil.copytree(root, readers)
    (readers / layout.GENERATOR_MARKER).unlink()
    (readers / "train" / "images" / "mine.txt").write_text("keep me")
    monkeypatch.setattr(data, "DATA_DIR", readers.parent)
    assert data.load_dataset("shapes").root == readers
    assert (readers / "train" / "images" / "mine.txt").read_text() == "keep me"


def test_large_scenes_keep_object_sizes_and_class_balance():
    small = np.zeros(5, np.int64)
    for index in range(64):
        _, mask = shapes.shapes_scene(np.random.default_rng(index), 64)
        small += np.bincount(mask.ravel(), minlength=5)
    image, mask = shapes.shapes_scene(np.random.default_rng(0), 512, object_scale=64)
    assert image.shape == (512, 512, 3) and mask.shape == (512, 512)
    large = np.bincount(mask.ravel(), minlength=5)
    # 64 cells of objects: the background share of 64 small scenes, not 1 scene blown up.
    assert abs(large[0] / large.sum() - small[0] / small.sum()) < 0.03
    assert np.all(large > 0), "every class, stars included, appears in the large scene"
    star_pixels = np.flatnonzero(mask.ravel() == 4).size
    assert star_pixels < 0.03 * mask.size, "stars keep their small size"
    again, _ = shapes.shapes_scene(np.random.default_rng(0), 512, object_scale=64)
    assert np.array_equal(image, again)
    with pytest.raises(ValueError, match="multiple of object_scale"):
        shapes.shapes_scene(np.random.default_rng(0), 100, object_scale=64)


def test_make_shapes_large_scene_variant(tmp_path):
    root = shapes.make_shapes(
        tmp_path / "large", split_sizes={"test": 1}, image_size=256, object_scale=64
    )
    (pair,) = data.load_dataset(root).split("test", verify="full")
    assert Image.open(pair.image).size == (256, 256)
    assert json.loads((root / layout.GENERATOR_MARKER).read_text())["object_scale"] == 64


def test_convert_mask_value_map_refuses_a_colour_mask(tmp_path):
    """Issue 37: value_map on an RGB mask wrote its brightness as class ids, silently."""
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetError, match=r"mode RGB, but value_map .* Fix: colors=\.\.\."):
        data.convert_mask(tmp_path / "rgb.png", tmp_path / "out.png", value_map={255: 1})
    assert not (tmp_path / "out.png").exists()


def test_raw_pet_archives_in_the_pets_folder_get_the_conversion_not_create_classes_json(tmp_path):
    raw = tmp_path / "oxford_pets"
    (raw / "annotations" / "trimaps").mkdir(parents=True)
    (raw / "images").mkdir()
    with pytest.raises(DatasetError, match=r"Oxford-IIIT Pet archives unpacked .* load_dataset"):
        data.load_dataset(raw)
