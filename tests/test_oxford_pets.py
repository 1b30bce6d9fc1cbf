"""helpers.oxford_pets: download, verification, safe extraction and conversion, all offline.

A tiny archive pair with the real structure and file naming is built once per module and served
from a ``file://`` URL or a loopback HTTP server; its real sizes and SHA-256 are the checksums.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from helpers import data, layout, oxford_pets
from helpers.layout import DatasetError
from helpers.oxford_pets import Archive, download_oxford_pets

# Two breeds as in the real lists: "<stem> <class id> <species> <breed id>".
BREEDS = {"Abyssinian": "1 1 1", "american_bulldog": "2 2 1"}
TRAINVAL = [f"{breed}_{i}" for breed in BREEDS for i in (1, 2, 3, 4, 5)]
TEST = [f"{breed}_{i}" for breed in BREEDS for i in (10, 11)]
# The real archive's quirks, one file each.
PNG_DATA, ALPHA, CMYK, GRAY, WARNS = (
    "Abyssinian_2",
    "Abyssinian_3",
    "american_bulldog_2",
    "american_bulldog_3",
    "Abyssinian_11",
)
# Listed in trainval.txt but unusable: skipped, each with its reason.
DAMAGED = {
    "Abyssinian_20": "unreadable image",
    "Abyssinian_21": "trimap values [7]",
    "Abyssinian_22": "no trimap",
    "Abyssinian_23": "image 30x16, trimap 20x16",
}


def _trimap(width: int, height: int) -> np.ndarray:
    """2 = background, 1 = pet (a block), 3 = its one-pixel border."""
    trimap = np.full((height, width), 2, np.uint8)
    trimap[3 : height - 3, 4 : width - 4] = 3
    trimap[4 : height - 4, 5 : width - 5] = 1
    return trimap


def _image_bytes(stem: str, width: int, height: int) -> bytes:
    rng = np.random.default_rng(len(stem) * 100 + width)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    if stem == PNG_DATA:
        Image.fromarray(pixels).save(buffer, "PNG")
    elif stem == ALPHA:
        alpha = np.full((height, width, 1), 200, np.uint8)
        Image.fromarray(np.concatenate([pixels, alpha], axis=2), "RGBA").save(buffer, "PNG")
    elif stem == CMYK:
        Image.fromarray(pixels).convert("CMYK").save(buffer, "JPEG")
    elif stem == GRAY:
        Image.fromarray(pixels).convert("L").save(buffer, "JPEG")
    else:
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    if stem == WARNS:  # "Corrupt JPEG data: ... extraneous bytes before marker 0xd9"
        return buffer.getvalue()[:-2] + b"\x12" * 64 + b"\xff\xd9"
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def build_archives(
    folder: Path,
    extra: tarfile.TarInfo | None = None,
    damaged: bool = False,
    lines: dict[str, str] | None = None,
) -> dict[str, Archive]:
    """Write images.tar.gz and annotations.tar.gz into ``folder``; return their checksums.

    ``extra`` is one more member of annotations.tar.gz; ``damaged`` adds four listed images
    that cannot be used (see ``DAMAGED``); ``lines`` (list file name -> line) appends a line
    to ``trainval.txt`` or ``test.txt``.
    """
    lines = lines or {}
    folder.mkdir(parents=True, exist_ok=True)
    trainval = TRAINVAL + (list(DAMAGED) if damaged else [])
    with tarfile.open(folder / "images.tar.gz", "w:gz") as tar:
        _add_dir(tar, "images")
        for index, stem in enumerate(TRAINVAL + TEST):
            _add(tar, f"images/{stem}.jpg", _image_bytes(stem, 20 + index % 3, 16))
        if damaged:
            _add(tar, "images/Abyssinian_20.jpg", _image_bytes("Abyssinian_20", 20, 16)[:300])
            for stem in ("Abyssinian_21", "Abyssinian_22"):
                _add(tar, f"images/{stem}.jpg", _image_bytes(stem, 20, 16))
            _add(tar, "images/Abyssinian_23.jpg", _image_bytes("Abyssinian_23", 30, 16))
        _add(tar, "images/Abyssinian_100.mat", b"MATLAB 5.0 MAT-file")  # the real set has some
    with tarfile.open(folder / "annotations.tar.gz", "w:gz") as tar:
        for name in ("annotations", "annotations/trimaps", "annotations/xmls"):
            _add_dir(tar, name)
        header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n"
        line = {stem: f"{stem} {BREEDS[stem.rsplit('_', 1)[0]]}" for stem in TRAINVAL + TEST}
        _add(tar, "annotations/list.txt", (header + "\n".join(line.values())).encode())
        line.update({stem: f"{stem} 1 1 1" for stem in DAMAGED})
        trainval_text = "\n".join([*(line[s] for s in trainval), lines.get("trainval.txt", "")])
        test_text = "\n".join([*(line[s] for s in TEST), lines.get("test.txt", "")])
        _add(tar, "annotations/trainval.txt", trainval_text.encode())
        _add(tar, "annotations/test.txt", test_text.encode())
        for index, stem in enumerate(TRAINVAL + TEST):
            buffer = io.BytesIO()
            Image.fromarray(_trimap(20 + index % 3, 16)).save(buffer, "PNG")
            _add(tar, f"annotations/trimaps/{stem}.png", buffer.getvalue())
            _add(tar, f"annotations/xmls/{stem}.xml", b"<annotation/>")
        _add(tar, "annotations/trimaps/._Abyssinian_1.png", b"\x00\x05\x16\x07 AppleDouble")
        if damaged:  # Abyssinian_22 has no trimap at all
            for stem, trimap in (
                ("Abyssinian_20", _trimap(20, 16)),
                ("Abyssinian_21", np.full((16, 20), 7, np.uint8)),
                ("Abyssinian_23", _trimap(20, 16)),
            ):
                buffer = io.BytesIO()
                Image.fromarray(trimap).save(buffer, "PNG")
                _add(tar, f"annotations/trimaps/{stem}.png", buffer.getvalue())
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x" * extra.size) if extra.isfile() else None)
    return {
        name: Archive((folder / name).stat().st_size, _sha256(folder / name))
        for name in ("images.tar.gz", "annotations.tar.gz")
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[Path, dict[str, Archive]]:
    folder = tmp_path_factory.mktemp("mirror")
    return folder, build_archives(folder)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the mirror folder; honours Range; cuts the next ``drops`` responses short."""

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = server.folder / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        start = 0
        asked = self.headers.get("Range", "")
        if server.ranges and asked.startswith("bytes="):
            start = int(asked.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if server.drops:  # cut this response short, and close the connection
            server.drops -= 1
            self.wfile.write(body[start : start + server.drop_after])
            return
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_mirror(mirror) -> Iterator[http.server.ThreadingHTTPServer]:
    """A loopback HTTP server on 127.0.0.1 for the mirror; stopped after the test."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.folder, server.requests, server.ranges = mirror[0], [], True
    server.drops, server.drop_after = 0, 0
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _values(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


# --- download + verify + convert + split -------------------------------------------------------


def test_download_verify_convert_and_split(mirror, tmp_path, capfd):
    folder, checksums = mirror
    root = download_oxford_pets(
        tmp_path / "oxford_pets", base_url=folder.as_uri(), archives=checksums
    )
    assert root == tmp_path / "oxford_pets"
    # Archives verified and kept under their final names, no .part left, no staging folder.
    downloads = tmp_path / "downloads"
    assert sorted(p.name for p in downloads.iterdir()) == ["annotations.tar.gz", "images.tar.gz"]
    assert all(_sha256(downloads / n) == checksums[n].sha256 for n in checksums)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "oxford_pets"]

    dataset = data.load_dataset(root)
    assert dataset.classes.names == ("background", "pet", "border")
    assert dataset.classes.ignore_index is None
    splits = {name: dataset.split(name, verify="full") for name in data.SPLITS}
    stems = {name: [p.image.stem for p in pairs] for name, pairs in splits.items()}
    assert stems["test"] == sorted(TEST)  # the dataset's own test list, untouched
    assert sorted(stems["train"] + stems["val"]) == sorted(TRAINVAL)
    assert {s.rsplit("_", 1)[0] for s in stems["val"]} == set(BREEDS)  # one per breed
    assert not [note for note in dataset.notes if "not RGB" in note]  # every image is RGB now

    # Trimap 1 = pet -> 1, 2 = background -> 0, 3 = border -> 2.
    mask = _values(root / "train" / "masks" / "Abyssinian_1.png")
    expected = np.choose(_trimap(20, 16), [0, 1, 0, 2]).astype(np.uint8)
    np.testing.assert_array_equal(mask, expected)

    # Clean JPEGs are moved as they are; the quirky ones are re-encoded once, as RGB PNG.
    re_encoded = {
        p.image.stem for pairs in splits.values() for p in pairs if p.image.suffix == ".png"
    }
    assert re_encoded == {PNG_DATA, ALPHA, CMYK, GRAY, WARNS}
    for pairs in splits.values():
        for pair in pairs:
            with Image.open(pair.image) as image:
                assert image.mode == "RGB"
                assert image.format == ("PNG" if pair.image.stem in re_encoded else "JPEG")
    clean = root / "train" / "images" / "Abyssinian_1.jpg"
    assert clean.read_bytes() == _image_bytes("Abyssinian_1", 20, 16)  # not re-encoded
    marker = json.loads((root / layout.GENERATOR_MARKER).read_text())
    assert marker["split_sizes"] == {name: len(s) for name, s in stems.items()}
    assert any("decoder warning: Corrupt JPEG data" in note for note in marker["re_encoded"])
    assert marker["skipped"] == []

    # Progress: a handful of plain lines, not a flood.
    lines = capfd.readouterr().out.splitlines()
    assert any(line.startswith("images.tar.gz:") for line in lines)
    ready = [line for line in lines if line.startswith("Oxford-IIIT Pet ready in")]
    assert len(ready) == 1 and "5 image(s) re-encoded" in ready[0]
    assert len(lines) < 15

    # The pipeline's decoder reads every file without a warning.
    import tensorflow as tf

    for pairs in splits.values():
        for pair in pairs:
            tf.io.decode_image(tf.io.read_file(str(pair.image)), channels=3)
    assert capfd.readouterr().err == ""


def test_border_as_ignore_and_archives_placed_by_hand(mirror, tmp_path):
    folder, checksums = mirror
    shutil.copytree(folder, tmp_path / "downloads")  # placed by hand: no download at all
    root = download_oxford_pets(
        tmp_path / "pets", border_as_ignore=True, base_url=_closed_port_url(), archives=checksums
    )
    classes = layout.read_classes(root)
    assert classes.names == ("background", "pet") and classes.ignore_index == 255
    mask = _values(root / "train" / "masks" / "Abyssinian_1.png")
    np.testing.assert_array_equal(mask, np.choose(_trimap(20, 16), [0, 1, 0, 255]))
    data.load_dataset(root).split("val", verify="full")


def test_prepared_data_is_reused_never_replaced_silently(mirror, tmp_path):
    folder, checksums = mirror
    prepare = functools.partial(download_oxford_pets, base_url=folder.as_uri(), archives=checksums)
    root = prepare(tmp_path / "pets")
    marker = (root / layout.GENERATOR_MARKER).read_text()
    shutil.rmtree(tmp_path / "downloads")  # reuse needs neither the archives nor the network
    assert prepare(tmp_path / "pets", base_url=_closed_port_url()) == root
    assert (root / layout.GENERATOR_MARKER).read_text() == marker

    with pytest.raises(DatasetError, match=r"prepared with .*overwrite=True"):
        prepare(tmp_path / "pets", border_as_ignore=True)
    assert prepare(tmp_path / "pets", border_as_ignore=True, overwrite=True) == root
    assert layout.read_classes(root).ignore_index == 255

    (tmp_path / "mine").mkdir()
    with pytest.raises(DatasetError, match="not prepared by download_oxford_pets"):
        prepare(tmp_path / "mine", overwrite=True)


def test_load_dataset_prepares_oxford_pets_on_first_use(mirror, tmp_path, monkeypatch):
    folder, checksums = mirror
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    local = functools.partial(download_oxford_pets, base_url=folder.as_uri(), archives=checksums)
    monkeypatch.setattr(oxford_pets, "download_oxford_pets", local)
    dataset = data.load_dataset("oxford_pets")
    assert dataset.root == tmp_path / "oxford_pets"
    assert dataset.classes.num_classes == 3
    assert (tmp_path / "downloads" / "images.tar.gz").is_file()


# --- checksums, interruptions, offline ------------------------------------------------------------


def test_checksum_failure_removes_the_file_with_a_clear_error(mirror, tmp_path):
    folder, checksums = mirror
    wrong = {
        **checksums,
        "annotations.tar.gz": Archive(checksums["annotations.tar.gz"].size, "0" * 64),
    }
    with pytest.raises(DatasetError, match=r"annotations.tar.gz .*failed verification.*removed"):
        download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=wrong)
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == ["images.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]  # nothing half-made


def test_damaged_archive_is_caught_on_every_use_and_fetched_again(mirror, tmp_path, capsys):
    folder, checksums = mirror
    downloads = tmp_path / "downloads"
    shutil.copytree(folder, downloads)
    damaged = bytearray((downloads / "images.tar.gz").read_bytes())
    damaged[100] ^= 0xFF  # same size, different content
    (downloads / "images.tar.gz").write_bytes(bytes(damaged))
    download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
    assert "images.tar.gz is damaged (SHA-256" in capsys.readouterr().out
    assert _sha256(downloads / "images.tar.gz") == checksums["images.tar.gz"].sha256


def test_interrupted_download_is_resumed_with_a_range_request(mirror, http_mirror, tmp_path):
    folder, checksums = mirror
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    half = (folder / "images.tar.gz").read_bytes()[:1000]
    (downloads / "images.tar.gz.part").write_bytes(half)
    download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)
    assert ("/images.tar.gz", "bytes=1000-") in http_mirror.requests
    assert not list(downloads.glob("*.part"))
    assert _sha256(downloads / "images.tar.gz") == checksums["images.tar.gz"].sha256


def test_interrupted_download_restarts_when_the_server_ignores_ranges(mirror, tmp_path):
    folder, checksums = mirror
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "images.tar.gz.part").write_bytes(b"garbage from an older attempt")
    download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
    assert not list(downloads.glob("*.part"))  # a file:// URL has no ranges: restarted
    assert _sha256(downloads / "images.tar.gz") == checksums["images.tar.gz"].sha256


def test_connection_dropped_midway_is_retried_and_resumed(mirror, http_mirror, tmp_path):
    _, checksums = mirror
    http_mirror.drops, http_mirror.drop_after = 1, 500
    download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)
    images = [r for r in http_mirror.requests if r[0] == "/images.tar.gz"]
    assert images == [("/images.tar.gz", None), ("/images.tar.gz", "bytes=500-")]
    assert _sha256(tmp_path / "downloads" / "images.tar.gz") == checksums["images.tar.gz"].sha256


def test_repeated_interruptions_keep_the_part_for_the_next_run(mirror, http_mirror, tmp_path):
    _, checksums = mirror
    http_mirror.drops, http_mirror.drop_after = 3, 300
    with pytest.raises(DatasetError, match=r"interrupted 3 times.*run again to resume"):
        download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)
    part = tmp_path / "downloads" / "images.tar.gz.part"
    assert part.stat().st_size == 900 and not (tmp_path / "downloads" / "images.tar.gz").exists()
    download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)
    assert http_mirror.requests[3] == ("/images.tar.gz", "bytes=900-")
    assert not part.exists()


def test_complete_part_is_verified_and_kept_without_a_request(mirror, http_mirror, tmp_path):
    folder, checksums = mirror
    (tmp_path / "downloads").mkdir()
    shutil.copy(folder / "images.tar.gz", tmp_path / "downloads" / "images.tar.gz.part")
    download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)
    assert [path for path, _ in http_mirror.requests] == ["/annotations.tar.gz"]


def test_http_error_is_reported_with_the_manual_route(mirror, http_mirror, tmp_path):
    _, checksums = mirror
    with pytest.raises(DatasetError, match=r"HTTP 404 .*place both files in"):
        download_oxford_pets(
            tmp_path / "pets", base_url=http_mirror.url + "moved/", archives=checksums
        )


def test_corrupt_resumed_part_is_removed_and_the_next_run_succeeds(mirror, http_mirror, tmp_path):
    _, checksums = mirror
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "images.tar.gz.part").write_bytes(b"\x00" * 1000)  # wrong bytes, resumed
    with pytest.raises(DatasetError, match=r"images.tar.gz .*failed verification"):
        download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)
    assert not (downloads / "images.tar.gz").exists()
    assert not (downloads / "images.tar.gz.part").exists()
    download_oxford_pets(tmp_path / "pets", base_url=http_mirror.url, archives=checksums)


def test_offline_error_says_where_to_place_the_archives(tmp_path):
    with pytest.raises(DatasetError) as error:
        download_oxford_pets(tmp_path / "pets", base_url=_closed_port_url())
    message = str(error.value)
    assert "Could not download" in message and "images.tar.gz" in message
    assert "annotations.tar.gz" in message and str(tmp_path / "downloads") in message
    assert 'DATASET = "shapes"' in message
    assert not (tmp_path / "pets").exists()


def test_progress_prints_a_line_per_tenth_at_most():
    lines: list[str] = []
    progress = oxford_pets._Progress("images.tar.gz", 10_000_000, lines.append)
    for done in range(0, 10_000_001, 1000):
        progress(done)
    progress.finish(10_000_000)
    assert len(lines) == 10  # 10 %, 20 %, ..., 90 %, then the summary
    assert lines[0].startswith("images.tar.gz:  10% (1.0 of 10.0 MB")


# --- malicious archives ---------------------------------------------------------------------------


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("annotations/../../escaped.txt"), r"'\.\.'"),
        (_member("/tmp/absolute_escape.txt"), "absolute path"),
        (
            _member("annotations/trimaps/evil", tarfile.SYMTYPE, "../../../outside"),
            "points outside",
        ),
        (_member("annotations/evil", tarfile.SYMTYPE, "/etc/passwd"), "points outside"),
        (_member("annotations/hard", tarfile.LNKTYPE, "../outside"), "points outside"),
    ],
    ids=["dotdot", "absolute", "symlink-up", "symlink-absolute", "hardlink"],
)
def test_malicious_archive_is_refused(tmp_path, member, message):
    folder = tmp_path / "evil_mirror"
    checksums = build_archives(folder, extra=member)
    with tarfile.open(folder / "annotations.tar.gz") as tar:
        assert member.name in tar.getnames()  # the archive really holds the bad name
    with pytest.raises(DatasetError, match=f"annotations.tar.gz is refused: .*{message}"):
        download_oxford_pets(
            tmp_path / "work" / "pets", base_url=folder.as_uri(), archives=checksums
        )
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["downloads"]
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob("outside"))
    assert not Path("/tmp/absolute_escape.txt").exists()


def test_unusable_listed_images_are_skipped_and_reported(tmp_path):
    checksums = build_archives(tmp_path / "mirror", damaged=True)
    root = download_oxford_pets(
        tmp_path / "pets", base_url=(tmp_path / "mirror").as_uri(), archives=checksums
    )
    marker = json.loads((root / layout.GENERATOR_MARKER).read_text())
    assert sorted(marker["skipped"]) == [f"{stem} ({why})" for stem, why in DAMAGED.items()]
    dataset = data.load_dataset(root)
    stems = [p.image.stem for name in data.SPLITS for p in dataset.split(name, verify="full")]
    assert sorted(stems) == sorted(TRAINVAL + TEST)


def test_trainval_and_test_must_not_overlap():
    with pytest.raises(DatasetError, match="both trainval and test"):
        oxford_pets.split_stems([("a_1", "1"), ("a_2", "1")], [("a_2", "1")], 0.1)
    splits = oxford_pets.split_stems([(f"a_{i}", "1") for i in range(20)], [("a_99", "1")], 0.1)
    assert len(splits["val"]) == 2 and len(splits["train"]) == 18 and splits["test"] == ["a_99"]


# --- issue 12: bad list entries and parameters, concurrent runs, leftovers, full disks ----------


@pytest.mark.parametrize(
    ("list_name", "line", "number"),
    [
        ("trainval.txt", "../../../victim 1 1 1", 11),
        ("test.txt", "/tmp/victim_absolute 1 1 1", 5),
        ("trainval.txt", "images/../../victim 1 1 1", 11),
        ("test.txt", "..\\..\\victim 1 1 1", 5),
        ("trainval.txt", ".. 1 1 1", 11),
        ("test.txt", "C:victim 1 1 1", 5),
    ],
    ids=["dotdot", "absolute", "inner-dotdot", "backslash", "parent", "drive"],
)
def test_list_entries_that_are_not_plain_file_names_are_refused(tmp_path, list_name, line, number):
    folder = tmp_path / "evil_mirror"
    checksums = build_archives(folder, lines={list_name: line})
    work = tmp_path / "work"
    work.mkdir()
    (work / "victim.jpg").write_bytes(_image_bytes("victim", 20, 16))
    with pytest.raises(DatasetError) as error:
        download_oxford_pets(work / "pets", base_url=folder.as_uri(), archives=checksums)
    message = str(error.value)
    assert f"{list_name} line {number} ({line!r})" in message
    assert "not a plain file name" in message and "official annotations.tar.gz" in message
    assert sorted(p.name for p in work.iterdir()) == ["downloads", "victim.jpg"]  # nothing moved


def test_plain_list_entries_are_read(tmp_path):
    listed = tmp_path / "trainval.txt"
    listed.write_text("# comment\n\nAbyssinian_1 1 1 1\n.hidden_2 2 2 1\nshort_3\n")
    assert oxford_pets._read_list(listed) == [
        ("Abyssinian_1", "1"),
        (".hidden_2", "2"),
        ("short_3", "short"),
    ]


@pytest.mark.parametrize("fraction", [-0.5, 0, 1, 1.5, float("nan"), "0.1", True])
def test_val_fraction_out_of_range_is_refused_up_front(mirror, tmp_path, fraction):
    folder, checksums = mirror
    with pytest.raises(DatasetError, match=rf"val_fraction={fraction!r} is not allowed.*above 0"):
        download_oxford_pets(
            tmp_path / "pets", base_url=folder.as_uri(), archives=checksums, val_fraction=fraction
        )
    assert list(tmp_path.iterdir()) == []  # refused before any download
    with pytest.raises(DatasetError, match="is not allowed"):
        oxford_pets.split_stems([("a_1", "1"), ("a_2", "1")], [("a_3", "1")], fraction)


def _python(code: str, *args: str) -> subprocess.Popen:
    """A small Python process (no helpers import: starts in a fraction of a second)."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)


def test_a_live_lock_makes_a_second_run_wait_then_stop_with_the_fix(
    mirror, tmp_path, monkeypatch, capsys
):
    folder, checksums = mirror
    lock = tmp_path / ".pets.lock"
    owner = _python("import time; time.sleep(60)")
    try:
        lock.write_text(f"{owner.pid}\n")
        monkeypatch.setattr(oxford_pets, "LOCK_WAIT_S", 0.5)
        start = time.monotonic()
        with pytest.raises(DatasetError) as error:
            download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
        assert time.monotonic() - start < 5
    finally:
        owner.kill()
        owner.wait()
    message = str(error.value)
    assert f"Process {owner.pid} is still preparing {tmp_path / 'pets'}" in message
    assert f"delete {lock} and run again" in message
    assert f"Process {owner.pid} is preparing" in capsys.readouterr().out
    assert lock.read_text() == f"{owner.pid}\n"  # the owner's lock is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pets.lock"]  # nothing else touched


@pytest.mark.parametrize("where", [".pets.lock", "downloads/images.tar.gz.lock"])
def test_a_waiting_run_goes_on_when_the_owner_finishes(mirror, tmp_path, capsys, where):
    folder, checksums = mirror
    lock = tmp_path / where
    lock.parent.mkdir(exist_ok=True)
    owner = _python(
        "import os, sys, time\n"
        "with open(sys.argv[1], 'x') as f: f.write(f'{os.getpid()}\\n')\n"
        "print('locked', flush=True); time.sleep(0.5); os.remove(sys.argv[1])",
        str(lock),
    )
    try:
        assert owner.stdout.readline() == "locked\n"
        download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
    finally:
        owner.kill()
        owner.wait()
    assert f"Process {owner.pid} is " in capsys.readouterr().out
    assert (tmp_path / "pets" / layout.GENERATOR_MARKER).is_file() and not lock.exists()


@pytest.mark.parametrize("left_by", ["dead process", "this pid, earlier", "no pid, old"])
def test_a_stale_lock_is_taken_over(mirror, tmp_path, capsys, left_by):
    folder, checksums = mirror
    lock = tmp_path / ".pets.lock"
    if left_by == "dead process":
        gone = _python("pass")
        gone.wait()
        lock.write_text(f"{gone.pid}\n")
    elif left_by == "this pid, earlier":  # e.g. a restarted container reuses small pids
        lock.write_text(f"{os.getpid()}\n")
    else:
        lock.write_text("")
        os.utime(lock, (time.time() - 60, time.time() - 60))
    download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
    assert f"Taking over {lock}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "pets"]


def test_a_lock_made_during_a_take_over_is_put_back(tmp_path):
    lock = tmp_path / "x.lock"
    lock.write_text("4242\n")  # another process took the stale lock over meanwhile
    oxford_pets._take_over(lock, "1\n")
    assert lock.read_text() == "4242\n" and sorted(tmp_path.iterdir()) == [lock]


def test_stale_staging_folders_are_removed_and_nothing_else(mirror, tmp_path, capsys):
    folder, checksums = mirror
    kept = [".pets-partial-notes", ".other-partial-ab12cd34", "pets-partial-ab12cd34"]
    for name in kept:
        (tmp_path / name).mkdir()
    (tmp_path / ".pets-partial-zz99zz99").write_text("a file, not a staging folder")
    kept.append(".pets-partial-zz99zz99")

    def killed_run() -> Path:
        stale = tmp_path / ".pets-partial-ab12_c34"
        (stale / ".extracted" / "images").mkdir(parents=True)
        (stale / ".extracted" / "images" / "Abyssinian_1.jpg").write_bytes(b"x" * 1000)
        return stale

    stale = killed_run()
    prepare = functools.partial(download_oxford_pets, base_url=folder.as_uri(), archives=checksums)
    root = prepare(tmp_path / "pets")
    assert not stale.exists() and f"Removing {stale}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "downloads", "pets"])
    marker = (root / layout.GENERATOR_MARKER).read_text()
    stale = killed_run()  # e.g. an overwrite=True run killed while converting
    assert prepare(tmp_path / "pets") == root
    assert not stale.exists() and (root / layout.GENERATOR_MARKER).read_text() == marker


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


@pytest.mark.parametrize("placed_by_hand", [False, True])
def test_free_space_is_checked_up_front(mirror, tmp_path, monkeypatch, placed_by_hand):
    folder, checksums = mirror
    if placed_by_hand:
        shutil.copytree(folder, tmp_path / "downloads")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DatasetError) as error:
        download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
    message = str(error.value)
    assert f"Not enough free space for {tmp_path / 'downloads'} and {tmp_path}" in message
    assert "0.0 MB are free" in message and "free some space, or pass root=" in message
    assert ("still to download" in message) is not placed_by_hand
    assert "for extracting and converting them" in message
    expected = ["downloads"] if placed_by_hand else []
    assert sorted(p.name for p in tmp_path.iterdir()) == expected  # nothing written


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, file: io.IOBase) -> None:
        self.file = file

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def _fail_writes_of(monkeypatch, stage: str) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    if stage == "download":
        real_open = Path.open

        def open_part(self: Path, mode: str = "r", *args: object, **kwargs: object):
            file = real_open(self, mode, *args, **kwargs)
            return _FullDisk(file) if self.suffix == ".part" else file

        monkeypatch.setattr(Path, "open", open_part)
    elif stage == "extract":

        def makefile(self, member: tarfile.TarInfo, target: str) -> None:
            raise OSError(full.errno, full.strerror, target)

        monkeypatch.setattr(tarfile.TarFile, "makefile", makefile)
    else:

        def save(self, target: object, *args: object, **kwargs: object) -> None:
            raise OSError(full.errno, full.strerror, str(target))

        monkeypatch.setattr(Image.Image, "save", save)


@pytest.mark.parametrize("stage", ["download", "extract", "convert"])
def test_a_disk_that_fills_up_is_reported_with_the_folder_and_space(
    mirror, tmp_path, monkeypatch, stage
):
    folder, checksums = mirror
    if stage != "download":
        shutil.copytree(folder, tmp_path / "downloads")
    _fail_writes_of(monkeypatch, stage)
    with pytest.raises(DatasetError) as error:
        download_oxford_pets(tmp_path / "pets", base_url=folder.as_uri(), archives=checksums)
    message = str(error.value)
    place = tmp_path / "downloads" if stage == "download" else tmp_path
    assert f"The disk holding {place} is full (No space left on device" in message
    assert " MB free there" in message and "free some space" in message
    if stage == "download":
        assert "kept in" in message and "images.tar.gz.part" in message
    else:
        assert f"writing {tmp_path / '.pets-partial-'}" in message
        assert "the partial conversion was removed" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]  # no staging, no lock
