"""The Oxford-IIIT Pet dataset: download, verify, extract safely, convert to the course layout.

Used when a notebook sets ``DATASET = "oxford_pets"`` (``helpers.data.load_dataset`` calls
:func:`download_oxford_pets` when ``data/oxford_pets/`` is missing). Steps, each one checked:

1. fetch ``images.tar.gz`` and ``annotations.tar.gz`` into ``data/downloads/`` (resumable
   ``.part`` files, size and SHA-256 computed while streaming, verified on every use);
2. extract them with ``tarfile``'s ``data`` filter, refusing ``../``, absolute paths and links;
3. convert: images to clean RGB files (the few ``.jpg`` files that hold PNG data, CMYK, alpha,
   grayscale or data that makes the JPEG decoder warn are re-encoded once, as PNG), trimaps
   (1 = pet, 2 = background, 3 = border) to masks of class ids, and the dataset's own
   ``trainval.txt`` / ``test.txt`` lists to ``train`` / ``val`` / ``test`` (``val`` is carved
   out of ``trainval``, never out of ``test``).

The result is built in a staging folder (``.<root name>-partial-<random>`` beside ``root``) and
renamed when complete, then reused. Refused up front, with the fix: a ``val_fraction`` outside
(0, 1), a disk without room for the downloads and the conversion, list entries that are not plain
file names. A disk that fills up anyway is reported with the folder and the space needed. One
preparation of a ``root`` (and one download of an archive) runs at a time: a lock file holding the
owner's pid makes a second process wait; a lock or staging folder left by a killed run is taken
over or removed on the next run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import io
import json
import math
import numbers
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import NamedTuple

import numpy as np
from PIL import Image

from helpers import DATA_DIR
from helpers.layout import GENERATOR_MARKER, Classes, DatasetError, publish

OXFORD_PETS_URL = "https://thor.robots.ox.ac.uk/~vgg/data/pets/"
# The marker's "generator". It names the module that held this function when the marker was
# introduced; kept as it is so that existing conversions are still recognised.
GENERATOR = "helpers.data.download_oxford_pets"


class Archive(NamedTuple):
    """The expected size in bytes and SHA-256 (hex) of one downloaded file."""

    size: int
    sha256: str


# From the published TensorFlow Datasets checksums for this dataset.
OXFORD_PETS_ARCHIVES: dict[str, Archive] = {
    "images.tar.gz": Archive(
        791_918_971, "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d"
    ),
    "annotations.tar.gz": Archive(
        19_173_078, "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91"
    ),
}
# Trimap value -> class id: 1 = pet, 2 = background, 3 = border (the pet's outline).
TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3
IGNORE_INDEX = 255
VAL_FRACTION = 0.1
CHUNK_BYTES = 1 << 20
# Members of the archives that the conversion reads; everything else is checked, not extracted.
_NEEDED = ("images/", "annotations/trimaps/", "annotations/trainval.txt", "annotations/test.txt")
# Staging holds the extracted archives plus masks and re-encoded images: issue 12 measured
# about 1.6 GB for the 811 MB of archives.
STAGING_FACTOR = 2.0
# A second preparation of the same root waits this long for the first one, polling.
LOCK_WAIT_S, LOCK_POLL_S = 3600.0, 0.2
_NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_HELD: set[str] = set()  # lock files this process holds (absolute paths)


def oxford_pets_classes(border_as_ignore: bool = False) -> Classes:
    """Classes of the converted dataset: background, pet and border, or border ignored."""
    if border_as_ignore:
        return Classes(("background", "pet"), ((40, 40, 40), (230, 25, 75)), IGNORE_INDEX)
    return Classes(("background", "pet", "border"), ((40, 40, 40), (230, 25, 75), (255, 225, 25)))


def download_oxford_pets(
    root: str | os.PathLike[str] = DATA_DIR / "oxford_pets",
    *,
    border_as_ignore: bool = False,
    base_url: str = OXFORD_PETS_URL,
    archives: Mapping[str, Archive] = OXFORD_PETS_ARCHIVES,
    downloads: str | os.PathLike[str] | None = None,
    val_fraction: float = VAL_FRACTION,
    overwrite: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Download (if needed), verify and convert the Oxford-IIIT Pet dataset into ``root``.

    Archives are kept in ``downloads`` (default: ``root``'s sibling ``downloads/``), where you
    may also place them by hand. ``border_as_ignore=True`` maps the border to ``ignore_index``
    255 instead of class 2. ``base_url`` and ``archives`` (name -> size and SHA-256) exist for
    mirrors and tests. A ``root`` prepared before with the same options is reused as it is;
    one prepared with other options is rebuilt only with ``overwrite=True``. ``val_fraction``
    must lie strictly between 0 and 1. One process prepares a ``root`` at a time (lock file
    ``.<root name>.lock`` beside it); another waits up to ``LOCK_WAIT_S`` seconds.
    """
    root = Path(root)
    downloads = root.parent / "downloads" if downloads is None else Path(downloads)
    _check_val_fraction(val_fraction)
    options = {"border_as_ignore": border_as_ignore, "val_fraction": val_fraction}
    if _prepared_with(root, options, overwrite) and not _staging_folders(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f".{root.name}.lock", f"preparing {root}"):
        for stale in _staging_folders(root):
            print(f"Removing {stale}, left by an interrupted preparation.", flush=True)
            shutil.rmtree(stale, ignore_errors=True)
        if _prepared_with(root, options, overwrite):
            return root
        needed = _check_free_space(root, downloads, archives)
        paths = {
            name: fetch_archive(name, expected, base_url, downloads, timeout=timeout)
            for name, expected in archives.items()
        }
        marker = {
            "generator": GENERATOR,
            **options,
            "archives": {name: expected.sha256 for name, expected in archives.items()},
        }
        classes = oxford_pets_classes(border_as_ignore)
        report = _build(root, paths, classes, val_fraction, marker, needed, overwrite)
    counts = report["split_sizes"]
    print(
        f"Oxford-IIIT Pet ready in {root}: {counts['train']} train / {counts['val']} val / "
        f"{counts['test']} test pairs; {len(report['re_encoded'])} image(s) re-encoded, "
        f"{len(report['skipped'])} skipped.",
        flush=True,
    )
    return root


def _build(
    root: Path,
    paths: dict[str, Path],
    classes: Classes,
    val_fraction: float,
    marker: dict[str, object],
    needed: int,
    overwrite: bool,
) -> dict[str, object]:
    """Extract and convert ``paths`` in a staging folder, add ``marker``, publish it as ``root``.

    ``needed``: the bytes the staging folder may take, named if the disk fills up.
    """
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(root), dir=root.parent))
    staging.chmod(0o755)
    try:
        with _space_for(root.parent, needed, "the partial conversion was removed"):
            extracted = staging / ".extracted"
            for name, path in paths.items():
                print(f"Extracting {name} ...", flush=True)
                safe_extract(path, extracted)
            report = _convert(extracted, staging, classes, val_fraction)
            shutil.rmtree(extracted)
            text = json.dumps({**marker, **report}, indent=2) + "\n"
            (staging / GENERATOR_MARKER).write_text(text)
        publish(staging, root, replace=overwrite)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return report


def _check_val_fraction(val_fraction: object) -> None:
    """Refuse a ``val_fraction`` that is not a number above 0 and below 1."""
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not 0 < val_fraction < 1
    ):
        raise DatasetError(
            f"val_fraction={val_fraction!r} is not allowed: it is the share of each breed of "
            "trainval.txt held out for validation, a number above 0 and below 1 (at least one "
            f"image per breed stays in train). Fix: pass e.g. val_fraction={VAL_FRACTION}."
        )


def _prepared_with(root: Path, options: dict[str, object], overwrite: bool) -> bool:
    """True when ``root`` holds a finished conversion with these options."""
    if not root.exists():
        return False
    try:
        marker = json.loads((root / GENERATOR_MARKER).read_text())
    except (OSError, ValueError):
        marker = None
    if not isinstance(marker, dict) or marker.get("generator") != GENERATOR:
        raise DatasetError(
            f"{root} exists but was not prepared by download_oxford_pets; it is never replaced. "
            "Fix: move it away, or pass another root."
        )
    previous = {key: marker.get(key) for key in options}
    if previous == options:
        return not overwrite
    if not overwrite:
        raise DatasetError(
            f"{root} was prepared with {previous}, not {options}. Fix: pass overwrite=True to "
            "rebuild it from the downloaded archives, or another root to keep both."
        )
    return False


# ----------------------------------------------------------------------------------------------
# One preparation at a time, leftovers of killed runs, disk space
# ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock: Path, what: str) -> Iterator[None]:
    """Hold ``lock``, a file holding this process's pid, while ``what`` runs.

    A live owner is waited for (``LOCK_WAIT_S`` at most, then a :class:`DatasetError` with the
    fix); a lock whose owner is dead (a killed run) is taken over.
    """
    mine, key = f"{os.getpid()}\n", os.path.abspath(lock)
    deadline, waiting = time.monotonic() + LOCK_WAIT_S, False
    while True:
        try:
            with lock.open("x") as file:
                file.write(mine)
            break
        except FileExistsError:
            text = _read_or_empty(lock)
        owner = text.strip() or "?"
        if not lock.exists():  # released meanwhile
            continue
        if _stale(lock, text, key):
            _take_over(lock, text)
        elif time.monotonic() >= deadline:
            raise DatasetError(
                f"Process {owner} is still {what} after {LOCK_WAIT_S:.0f} s (lock file {lock}). "
                "Fix: let it finish, then run again; if no such preparation runs any more (the "
                f"pid may now belong to another program), delete {lock} and run again."
            )
        elif not waiting:
            waiting = True
            print(
                f"Process {owner} is {what} (lock file {lock}); waiting for it to finish "
                f"(at most {LOCK_WAIT_S:.0f} s) ...",
                flush=True,
            )
        time.sleep(0 if not waiting else LOCK_POLL_S)
    _HELD.add(key)
    try:
        yield
    finally:
        _HELD.discard(key)
        if _read_or_empty(lock) == mine:
            lock.unlink(missing_ok=True)


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _stale(lock: Path, text: str, key: str) -> bool:
    """True when the process named in ``lock`` is gone (or no pid was written there for 10 s)."""
    if not (text.endswith("\n") and text.strip().isdigit()):  # being written, or garbage
        try:
            return time.time() - lock.stat().st_mtime > 10
        except FileNotFoundError:
            return False  # released meanwhile: try again
    pid = int(text)
    if pid == os.getpid():  # held by another thread here, or left by an earlier process
        return key not in _HELD
    if pid <= 0 or os.name == "nt":  # on Windows os.kill(pid, 0) would end the process
        return pid <= 0
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _take_over(lock: Path, text: str) -> None:
    """Remove a stale ``lock`` that still holds ``text`` (not a lock made meanwhile)."""
    grabbed = lock.with_name(f"{lock.name}.{os.getpid()}.stale")
    try:
        os.replace(lock, grabbed)
    except FileNotFoundError:
        return  # another process took it over first
    if _read_or_empty(grabbed) != text:  # a fresh lock of another process: put it back
        os.replace(grabbed, lock)
    else:
        print(f"Taking over {lock}, left by process {text.strip() or '?'} (gone).", flush=True)
        grabbed.unlink()


def _staging_prefix(root: Path) -> str:
    return f".{root.name}-partial-"


def _staging_folders(root: Path) -> list[Path]:
    """Staging folders of ``root`` (``.<name>-partial-`` and tempfile's 8 random characters)."""
    if not root.parent.is_dir():
        return []
    name = re.compile(re.escape(_staging_prefix(root)) + "[a-z0-9_]{8}")
    return sorted(
        path
        for path in root.parent.iterdir()
        if name.fullmatch(path.name) and path.is_dir() and not path.is_symlink()
    )


def _check_free_space(root: Path, downloads: Path, archives: Mapping[str, Archive]) -> int:
    """Refuse to start without room for the missing downloads and the conversion.

    Return the bytes the conversion needs beside ``root`` (its staging folder).
    """
    missing = sum(
        0 if (downloads / name).is_file() else expected.size - _size(downloads / f"{name}.part")
        for name, expected in archives.items()
    )
    staging = int(STAGING_FACTOR * sum(expected.size for expected in archives.values()))
    disks: dict[int, list[tuple[Path, Path, int, str]]] = {}
    for folder, size, purpose in (
        (downloads, max(missing, 0), "the archives still to download"),
        (root.parent, staging, "extracting and converting them"),
    ):
        existing = next(path for path in (folder, *folder.parents) if path.exists())
        disks.setdefault(existing.stat().st_dev, []).append((folder, existing, size, purpose))
    for places in disks.values():
        needed = sum(size for _, _, size, _ in places)
        free = shutil.disk_usage(places[0][1]).free
        if needed > free:
            folders = " and ".join(str(folder) for folder, *_ in places)
            parts = " + ".join(f"{_mb(size)} for {why}" for _, _, size, why in places if size)
            raise DatasetError(
                f"Not enough free space for {folders}: preparing the Oxford-IIIT Pet needs about "
                f"{_mb(needed)} there ({parts}), {_mb(free)} are free. Fix: "
                "free some space, or pass root= (and downloads=) on a disk with more room."
            )
    return staging


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


@contextlib.contextmanager
def _space_for(folder: Path, needed: int, kept: str) -> Iterator[None]:
    """Turn "no space left" while writing into ``folder`` into a :class:`DatasetError`."""
    try:
        yield
    except OSError as error:
        if error.errno not in _NO_SPACE:
            raise
        written = f" writing {error.filename}" if error.filename else ""
        raise DatasetError(
            f"The disk holding {folder} is full ({error.strerror}{written}): this step needs "
            f"about {_mb(needed)} free there; {kept}. Fix: free some space, or pass "
            "root= (and downloads=) on a disk with more room, then run again."
        ) from None


def _raise_if_no_space(error: BaseException) -> None:
    """Re-raise a full disk, which must not pass for a damaged file."""
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        raise error


# ----------------------------------------------------------------------------------------------
# Download and verification
# ----------------------------------------------------------------------------------------------


class _Interrupted(Exception):
    """The transfer stopped part-way; the ``.part`` file holds what arrived."""


class _Unreachable(Exception):
    """The server could not be reached at all."""


def fetch_archive(
    name: str,
    expected: Archive,
    base_url: str,
    downloads: Path,
    *,
    timeout: float = 30.0,
    attempts: int = 3,
) -> Path:
    """Return ``downloads/name``, verified; download it first when it is missing or damaged.

    The download goes to ``name.part`` (resumed with an HTTP Range request when the server
    supports it, restarted otherwise) and gets its final name only after size and SHA-256
    match. A damaged file is removed, never kept under the final name. A lock file
    (``name.lock``) keeps a second process from writing the same ``.part`` meanwhile.
    """
    downloads.mkdir(parents=True, exist_ok=True)
    with _locked(downloads / f"{name}.lock", f"downloading {downloads / name}"):
        return _fetch(name, expected, base_url, downloads, timeout, attempts)


def _fetch(
    name: str, expected: Archive, base_url: str, downloads: Path, timeout: float, attempts: int
) -> Path:
    target = downloads / name
    if target.is_file():
        problem = _check(target, expected)
        if problem is None:
            return target
        target.unlink()
        print(f"{target} is damaged ({problem}): removed, downloading it again.", flush=True)
    part = downloads / f"{name}.part"
    url = base_url.rstrip("/") + "/" + name
    print(f"Downloading {url} ({expected.size / 1e6:.1f} MB) ...", flush=True)
    for attempt in range(1, attempts + 1):
        try:
            kept = f"what arrived is kept in {part} and the next run resumes there"
            with _space_for(downloads, expected.size - _size(part), kept):
                size, sha256 = _download(url, part, expected, timeout)
            break
        except _Unreachable as error:
            raise DatasetError(_offline_message(url, error, base_url, downloads)) from None
        except _Interrupted as error:
            if attempt == attempts:
                raise DatasetError(
                    f"The download of {url} was interrupted {attempts} times ({error}). What "
                    f"arrived is kept in {part}; run again to resume. "
                    + _by_hand(base_url, downloads)
                ) from None
            print(f"{name}: interrupted ({error}); resuming (attempt {attempt + 1}).", flush=True)
    if (size, sha256) != tuple(expected):
        part.unlink()
        raise DatasetError(
            f"{name} downloaded from {url} failed verification: expected {expected.size:,} bytes "
            f"with SHA-256 {expected.sha256}, got {size:,} bytes with SHA-256 {sha256}. The bad "
            "file was removed; run again to download it afresh. If this repeats, a proxy or the "
            "server alters the file: " + _by_hand(base_url, downloads)
        )
    part.replace(target)
    return target


def _download(url: str, part: Path, expected: Archive, timeout: float) -> tuple[int, str]:
    """One attempt: stream ``url`` into ``part``; return the size and SHA-256 of the result."""
    have = part.stat().st_size if part.exists() else 0
    if have > expected.size:
        part.unlink()
        have = 0
    if have == expected.size:
        return have, _sha256(part)
    request = urllib.request.Request(url, headers={"User-Agent": "segmentation-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the range does not fit the file: start again
            part.unlink()
            return _download(url, part, expected, timeout)
        raise _Unreachable(f"the server answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise _Unreachable(getattr(error, "reason", error)) from None
    with response:
        content_range = response.headers.get("Content-Range", "")
        if have and not (response.status == 206 and content_range.startswith(f"bytes {have}-")):
            have = 0  # the server (or a file:// URL) ignores Range requests: restart
        if have:
            print(f"{url.rsplit('/', 1)[-1]}: resuming at byte {have:,}.", flush=True)
        length = response.headers.get("Content-Length")
        announced = have + int(length) if length and length.isdigit() else None
        hasher = hashlib.sha256()
        if have:
            _hash_into(hasher, part)
        progress = _Progress(part.name.removesuffix(".part"), expected.size)
        received = have
        with part.open("ab" if have else "wb") as output:
            while received <= expected.size:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as error:
                    raise _Interrupted(f"{type(error).__name__} at {received:,} bytes") from None
                if not chunk:
                    break
                output.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                progress(received)
    if received <= expected.size and announced is not None and received < announced:
        raise _Interrupted(f"connection closed at {received:,} of {announced:,} bytes")
    progress.finish(received)
    return received, hasher.hexdigest()


class _Progress:
    """Prints one line per 10 % of a download, and a last line with the average speed."""

    def __init__(self, name: str, total: int, write: Callable[[str], object] = print) -> None:
        self.name, self.total, self.write = name, total, write
        self.start = time.monotonic()
        self.next_step = 10

    def __call__(self, done: int) -> None:
        percent = 100 * done // max(self.total, 1)
        if percent < self.next_step or done >= self.total:
            return
        self.next_step = percent // 10 * 10 + 10
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = done / elapsed
        left = (self.total - done) / rate if rate else float("inf")
        self.write(
            f"{self.name}: {percent:3d}% ({done / 1e6:.1f} of {self.total / 1e6:.1f} MB, "
            f"{rate / 1e6:.1f} MB/s, about {left:.0f} s left)"
        )
        sys.stdout.flush()

    def finish(self, done: int) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        self.write(f"{self.name}: {done / 1e6:.1f} MB in {elapsed:.0f} s.")
        sys.stdout.flush()


def _hash_into(hasher: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            hasher.update(chunk)


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    _hash_into(hasher, path)
    return hasher.hexdigest()


def _check(path: Path, expected: Archive) -> str | None:
    """None when ``path`` has the expected size and SHA-256, else what differs."""
    size = path.stat().st_size
    if size != expected.size:
        return f"{size:,} bytes instead of {expected.size:,}"
    sha256 = _sha256(path)
    if sha256 != expected.sha256:
        return f"SHA-256 {sha256} instead of {expected.sha256}"
    return None


def _by_hand(base_url: str, downloads: Path) -> str:
    base = base_url.rstrip("/")
    return (
        f"To download by hand, fetch {base}/images.tar.gz (792 MB) and "
        f"{base}/annotations.tar.gz (19 MB) on a machine with internet access and place both "
        f"files in {downloads}/ ; download_oxford_pets() verifies and uses them from there."
    )


def _offline_message(url: str, reason: object, base_url: str, downloads: Path) -> str:
    return (
        f"Could not download {url} ({reason}). " + _by_hand(base_url, downloads) + " Or work "
        'offline with the generated dataset: set DATASET = "shapes" in the parameters cell.'
    )


# ----------------------------------------------------------------------------------------------
# Safe extraction
# ----------------------------------------------------------------------------------------------


def safe_extract(archive: Path, target: Path) -> None:
    """Extract the members the conversion needs from ``archive`` into ``target``.

    Every member is checked first: an absolute path, a ``..`` component or a link that points
    outside ``target`` raises :class:`DatasetError` (the archive is refused, whatever it holds).
    Regular files are then written through ``tarfile``'s ``data`` filter; links, devices and
    unneeded members (for example ``annotations/xmls/``) are not extracted.
    """
    target.mkdir(parents=True, exist_ok=True)

    def checked(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
        _refuse_unsafe(member, archive)
        try:
            member = tarfile.data_filter(member, destination)
        except tarfile.FilterError as error:
            raise DatasetError(f"{archive} is refused: unsafe member ({error}).") from None
        name = member.name.removeprefix("./")
        if not member.isfile() or not name.startswith(_NEEDED):
            return None
        return member

    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, filter=checked)
    except (tarfile.TarError, EOFError, OSError) as error:
        _raise_if_no_space(error)
        raise DatasetError(f"{archive} could not be extracted ({error}).") from None


def _refuse_unsafe(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        raise DatasetError(f"{archive} is refused: member {name!r} has an absolute path.")
    if ".." in PurePosixPath(name).parts:
        raise DatasetError(f"{archive} is refused: member {name!r} points outside ('..').")
    if member.issym() or member.islnk():
        link = member.linkname
        base = PurePosixPath(name).parent if member.issym() else PurePosixPath()
        resolved = os.path.normpath(str(base / link))
        if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise DatasetError(
                f"{archive} is refused: link {name!r} -> {link!r} points outside the dataset."
            )


# ----------------------------------------------------------------------------------------------
# Conversion to the course layout
# ----------------------------------------------------------------------------------------------


def _read_list(path: Path) -> list[tuple[str, str]]:
    """(stem, class id) per line of ``trainval.txt`` / ``test.txt`` ("Abyssinian_1 1 1 1").

    A stem that is not a plain file name (a ``/``, ``\\``, ``..``, drive or NUL) would move files
    outside the dataset: the list is refused, naming the line.
    """
    if not path.is_file():
        raise DatasetError(f"{path.name} is missing from annotations.tar.gz.")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        stem = fields[0]
        if (
            stem in (".", "..")
            or "\0" in stem
            or not (stem == PurePosixPath(stem).name == PureWindowsPath(stem).name)
        ):
            raise DatasetError(
                f"annotations.tar.gz is refused: {path.name} line {number} ({line.strip()!r}) "
                f"names {stem!r}, which is not a plain file name. Fix: use the official "
                f"annotations.tar.gz from {OXFORD_PETS_URL}, whose lines name files such as "
                "'Abyssinian_1'."
            )
        entries.append((stem, fields[1] if len(fields) > 1 else stem.rsplit("_", 1)[0]))
    return entries


def split_stems(
    trainval: list[tuple[str, str]], test: list[tuple[str, str]], val_fraction: float
) -> dict[str, list[str]]:
    """The dataset's own lists as train / val / test stems, sorted.

    ``val`` takes ``ceil(val_fraction * n)`` images of each breed out of ``trainval`` (never
    out of ``test``), chosen by a hash of the file name: deterministic and stable.
    """
    _check_val_fraction(val_fraction)
    overlap = sorted({stem for stem, _ in trainval} & {stem for stem, _ in test})
    if overlap:
        raise DatasetError(f"{len(overlap)} image(s) are in both trainval and test: {overlap[:5]}")
    breeds: dict[str, list[str]] = {}
    for stem, breed in trainval:
        breeds.setdefault(breed, []).append(stem)
    val: set[str] = set()
    for stems in breeds.values():
        ranked = sorted(stems, key=lambda stem: hashlib.sha256(stem.encode()).hexdigest())
        val.update(ranked[: min(math.ceil(val_fraction * len(stems)), len(stems) - 1)])
    return {
        "train": sorted(stem for stem, _ in trainval if stem not in val),
        "val": sorted(val),
        "test": sorted(stem for stem, _ in test),
    }


def _convert(
    extracted: Path, output: Path, classes: Classes, val_fraction: float
) -> dict[str, object]:
    """Write ``output/<split>/images|masks`` and ``classes.json``; return a report."""
    annotations = extracted / "annotations"
    splits = split_stems(
        _read_list(annotations / "trainval.txt"),
        _read_list(annotations / "test.txt"),
        val_fraction,
    )
    border = IGNORE_INDEX if classes.ignore_index is not None else 2
    lookup = np.full(256, -1, dtype=np.int16)
    lookup[[TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER]] = (1, 0, border)
    jobs = []
    skipped: list[str] = []
    for split, stems in splits.items():
        for folder in ("images", "masks"):
            (output / split / folder).mkdir(parents=True)
        for stem in stems:
            image = extracted / "images" / f"{stem}.jpg"
            trimap = annotations / "trimaps" / f"{stem}.png"
            if image.is_file() and trimap.is_file():
                jobs.append((split, stem, image, trimap))
            else:
                skipped.append(f"{stem} (no {'image' if not image.is_file() else 'trimap'})")
    print(f"Converting {len(jobs)} images and trimaps ...", flush=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        masks = list(
            pool.map(lambda job: _write_mask(job[3], output / job[0] / "masks", lookup), jobs)
        )
    re_encoded: list[str] = []
    with _libjpeg_warnings() as warnings_of:
        for (split, stem, image, _), mask in zip(jobs, masks, strict=True):
            if isinstance(mask, str):
                skipped.append(f"{stem} ({mask})")
                continue
            reason = _write_image(image, output / split / "images", mask, warnings_of)
            if reason is not None and reason.startswith("skipped: "):
                (output / split / "masks" / f"{stem}.png").unlink()
                skipped.append(f"{stem} ({reason.removeprefix('skipped: ')})")
            elif reason is not None:
                re_encoded.append(f"{stem} ({reason})")
    (output / "classes.json").write_text(json.dumps(classes.to_json(), indent=2) + "\n")
    split_sizes = {split: len(list((output / split / "masks").iterdir())) for split in splits}
    if not all(split_sizes.values()):
        raise DatasetError(f"The archives gave an empty split: {split_sizes}.")
    return {"split_sizes": split_sizes, "re_encoded": re_encoded, "skipped": skipped}


def _write_mask(trimap: Path, folder: Path, lookup: np.ndarray) -> tuple[int, int] | str:
    """Trimap -> mask of class ids in ``folder``; return its size (width, height) or a problem.

    A trimap that is unreadable or holds values other than 1, 2, 3 is reported, not written.
    """
    try:
        with Image.open(trimap) as image:
            values = np.asarray(image) if image.mode in ("L", "P") else None
            size = image.size
    except (OSError, SyntaxError, ValueError):
        return "unreadable trimap"
    if values is None:
        return "trimap not 8-bit"
    ids = lookup[values]
    if (ids < 0).any():
        return f"trimap values {sorted(np.unique(values[ids < 0]).tolist())}"
    Image.fromarray(ids.astype(np.uint8)).save(folder / trimap.name)  # one channel: mode L
    return size


def _write_image(
    source: Path, folder: Path, size: tuple[int, int], warnings_of: Callable[[Path], str]
) -> str | None:
    """Move a clean RGB JPEG into ``folder`` as it is; re-encode anything else once, as PNG.

    Return None for a clean file, why it was re-encoded, or ``"skipped: <why>"``.
    """
    try:
        with Image.open(source) as image:
            kind, mode, found = image.format, image.mode, image.size
    except (OSError, SyntaxError, ValueError):
        return "skipped: unreadable image"
    if found != size:
        return f"skipped: image {found[0]}x{found[1]}, trimap {size[0]}x{size[1]}"
    if kind != "JPEG":
        reason = f"{kind} data"
    elif mode != "RGB":
        reason = f"{mode} JPEG"
    else:
        warning = warnings_of(source)
        if not warning:
            os.replace(source, folder / source.name)
            return None
        reason = f"decoder warning: {warning}"
    try:
        with Image.open(source) as image:
            image.convert("RGB").save(folder / f"{source.stem}.png")
    except (OSError, SyntaxError, ValueError) as error:
        _raise_if_no_space(error)
        return "skipped: unreadable image"
    return reason


@contextlib.contextmanager
def _libjpeg_warnings() -> Iterator[Callable[[Path], str]]:
    """Yield a function that decodes a file as the pipeline does and returns libjpeg's warnings.

    libjpeg prints "Corrupt JPEG data: ..." to the process's stderr (file descriptor 2), where
    no Python code can catch it and Pillow never shows it; during this block descriptor 2 goes
    to a temporary file that is read after each decode.
    """
    import tensorflow as tf

    def decode(data: tf.Tensor) -> None:
        tf.io.decode_image(data, channels=3, expand_animations=False)

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            clean = io.BytesIO()
            Image.new("RGB", (8, 8)).save(clean, "JPEG")
            decode(tf.constant(clean.getvalue()))  # first op: start-up lines, not warnings
            seen = os.fstat(sink.fileno()).st_size

            def warnings_of(path: Path) -> str:
                nonlocal seen
                try:
                    decode(tf.io.read_file(str(path)))
                except tf.errors.OpError as error:
                    return f"{type(error).__name__}"
                size = os.fstat(sink.fileno()).st_size
                if size == seen:
                    return ""
                sink.seek(seen)
                text = sink.read(size - seen).decode("utf-8", "replace").strip()
                seen = size
                return " ".join(text.split())[:120]

            yield warnings_of
        finally:
            os.dup2(saved, 2)
            os.close(saved)
