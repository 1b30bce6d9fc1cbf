"""The committed real-photo sample (``data/pets_sample``) and the tool that builds it."""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import DATA_DIR, data
from tools import make_pets_sample as tool

SAMPLE = DATA_DIR / "pets_sample"


def test_the_sample_loads_offline_and_every_pair_verifies():
    dataset = data.load_dataset("pets_sample")
    assert dataset.classes.names == ("background", "pet", "border")
    sizes = {split: len(dataset.split(split)) for split in data.SPLITS}
    assert sizes == {"train": 554, "val": 69, "test": 69}
    for split in data.SPLITS:  # cats and dogs in every split
        kinds = {tool.species(pair.image.stem) for pair in dataset.split(split)}
        assert kinds == {"cat", "dog"}, split


def test_every_committed_file_matches_its_sha256_and_none_is_unlisted():
    listed = {}
    for line in (SAMPLE / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {
        str(p.relative_to(SAMPLE))
        for p in SAMPLE.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    }
    assert present == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == digest, name


def test_the_sample_stays_within_8_mb():
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size <= 8_000_000, f"{size / 1e6:.2f} MB"


def test_sources_list_every_stem_once_with_its_split():
    with open(SAMPLE / tool.SOURCES, encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    assert len({row["stem"] for row in rows}) == len(rows) == 693
    left_out = [row["stem"] for row in rows if not row["split"]]
    assert left_out == list(tool.LEFT_OUT)
    split_of = {row["stem"]: row["split"] for row in rows if row["split"]}
    assert split_of == tool.assign_splits(list(split_of))
    assert split_of[tool.FULL_RESOLUTION_STEM] == "test"  # the full-size photo is held out


def _fake_originals(folder: Path, stems: list[str]) -> None:
    rng = np.random.default_rng(0)
    for kind in ("images", "trimaps"):
        (folder / kind).mkdir(parents=True)
    for index, stem in enumerate(stems):
        height, width = 200 + 10 * index, 300
        Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8)).save(
            folder / "images" / f"{stem}.jpg"
        )
        trimap = np.full((height, width), 2, np.uint8)
        trimap[50:150, 80:200] = 1
        trimap[48:50, 80:200] = 3
        Image.fromarray(trimap).save(folder / "trimaps" / f"{stem}.png")


STEMS = ["Bengal_1", "Bengal_2", "Bengal_3", "beagle_1", "beagle_2", "beagle_3", "Abyssinian_34"]


def test_the_tool_gives_the_same_sample_from_the_originals_and_from_the_archives(tmp_path):
    originals = tmp_path / "originals"
    _fake_originals(originals, STEMS)
    archives = tmp_path / "archives"
    archives.mkdir()
    for archive, prefix, kind in (
        ("images.tar.gz", "images/", "images"),
        ("annotations.tar.gz", "annotations/trimaps/", "trimaps"),
    ):
        with tarfile.open(archives / archive, "w:gz") as tar:
            for path in sorted((originals / kind).iterdir()):
                tar.add(path, arcname=prefix + path.name)
    outputs = []
    for name, read in (
        ("from-originals", tool.read_originals(originals, STEMS)),
        ("from-archives", tool.read_archives(archives, STEMS)),
    ):
        output = tmp_path / name
        output.mkdir()
        rows = tool.build(read, output, border_as_ignore=False)
        tool.write_records(output, rows, border_as_ignore=False)
        outputs.append(output)
    first, second = ((o / "SHA256SUMS").read_text() for o in outputs)
    assert first == second
    masks = list((outputs[0]).glob("*/masks/*.png"))
    assert len(masks) == len(STEMS) - 1  # Abyssinian_34 left out
    values = np.unique(np.concatenate([np.asarray(Image.open(m)).ravel() for m in masks]))
    assert set(values) == {0, 1, 2}  # background, pet, border
    photo = Image.open(next(outputs[0].glob("*/images/*.jpg")))
    assert min(photo.size) == tool.SHORT_SIDE


def test_the_border_as_ignore_variant_marks_the_border_255(tmp_path):
    trimap = io.BytesIO()
    Image.fromarray(np.array([[1, 2, 3]], np.uint8)).save(trimap, "PNG")
    assert tool.mask_ids(trimap.getvalue(), True).tolist() == [[1, 0, 255]]
    assert tool.mask_ids(trimap.getvalue(), False).tolist() == [[1, 0, 2]]


def test_a_changed_source_file_is_refused(tmp_path):
    originals = tmp_path / "originals"
    _fake_originals(originals, STEMS[:2])
    output = tmp_path / "out"
    output.mkdir()
    rows = tool.build(tool.read_originals(originals, STEMS[:2]), output, False)
    tool.write_records(output, rows, False)
    Image.new("RGB", (300, 200)).save(originals / "images" / "Bengal_1.jpg")  # another photo
    again = tmp_path / "again"
    again.mkdir()
    changed = tool.build(tool.read_originals(originals, STEMS[:2]), again, False)
    with pytest.raises(SystemExit, match="Bengal_1: its image differs"):
        tool.check_sources(changed, output / tool.SOURCES)


def test_the_tool_never_replaces_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="exists; it is kept"):
        tool.main(["--originals", str(tmp_path), "--output", str(mine), "--overwrite"])
    assert (mine / "notes.txt").read_text() == "keep me"
