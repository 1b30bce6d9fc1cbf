"""Datasets on disk: loading, full verification (cached), and mask conversion.

Introduced in notebook 01. :func:`load_dataset` opens a folder in the layout of
:mod:`helpers.layout`, generating ``shapes`` (:mod:`helpers.shapes`) or downloading
``oxford_pets`` (:mod:`helpers.oxford_pets`) on first use. A folder with only ``images/`` and
``masks/`` (no splits) is split deterministically. Every pair is verified fully (decoded)
before it is used; the verdict on a valid dataset is cached per file state under
``data/.verified/``, so the next run starts at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import DATA_DIR, oxford_pets, shapes
from helpers.layout import IMAGE_FILE_SUFFIXES, IMAGE_FORMATS, MASK_SUFFIXES, read_classes

# The contract's names that readers use as ``data.X`` (notebook 01).
from helpers.layout import SPLITS as SPLITS
from helpers.layout import Classes as Classes
from helpers.layout import DatasetError as DatasetError
from helpers.layout import Pair as Pair

# Fractions of a split-less folder that go to train and val; the rest is test.
DEFAULT_SPLIT_FRACTIONS = (0.8, 0.1)
MIN_EVAL_PAIRS = 3  # a val or test split with fewer pairs measures nothing: a note says so
VERIFIER_VERSION = 1  # bump when the checks change: cached verdicts are then redone
# A file modified this recently may change again within the file system's timestamp
# resolution without a new mtime: such a dataset state is verified but not cached.
RACY_SECONDS = 2.0
RANKED_SPLIT_BELOW = 100  # fewer pairs than this are split by the rank of their hash
SHOWN_NAMES = 5  # a refusal that applies to many files names the first few and counts the rest
EXIF_ORIENTATION = 0x0112


@dataclass
class Dataset:
    """A dataset folder that follows the layout contract. Use :func:`load_dataset`.

    ``split_fractions`` (train, val; the rest is test) apply to a folder without splits.
    """

    root: Path
    classes: Classes
    notes: list[str] = field(default_factory=list)
    split_fractions: tuple[float, float] = DEFAULT_SPLIT_FRACTIONS
    _verified_state: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.root.name

    def split(self, name: str, verify: str = "full") -> list[Pair]:
        """Sorted image/mask pairs of split ``name`` ("train", "val" or "test").

        ``verify="full"`` (the default) decodes every file of every split once per dataset
        state: pairing, formats, modes, sizes, EXIF orientation, truncated data and mask
        values; the verdict is cached. ``verify="header"`` reads only the file headers.
        All problems are reported together in one :class:`DatasetError`.
        """
        if name not in SPLITS:
            raise DatasetError(f"Unknown split {name!r}: use one of {', '.join(SPLITS)}.")
        if verify not in ("header", "full"):
            raise ValueError(f"verify must be 'header' or 'full', not {verify!r}")
        splits = self._verified_splits(decode=verify == "full")
        if name not in splits:
            raise DatasetError(
                f"{self.root} has no {name}/ folder and no images/ + masks/ folders. "
                f"Fix: arrange the files as {self.root}/{name}/images and {self.root}/{name}/masks."
            )
        if not splits[name]:
            raise DatasetError(
                f"Split {name!r} of {self.root} is empty: no image/mask pairs found. "
                f"Fix: {self._empty_split_fix(name, splits)}"
            )
        return list(splits[name])

    def _empty_split_fix(self, name: str, splits: dict[str, list[Pair]]) -> str:
        """The fix for an empty split: it depends on who chose the splits, and how."""
        if _split_folders(self.root):
            return (
                f"add pairs to {self.root}/{name}/images and masks, or move every pair into "
                f"{self.root}/images and masks (no split folders) and the loader splits them."
            )
        total = sum(len(pairs) for pairs in splits.values())
        if total < len(SPLITS):
            return (
                f"this folder holds {total} pair(s), too few to give train, val and test one "
                "each: add pairs (3 or more)."
            )
        return (
            f"split_fractions={self.split_fractions} leave no share for {name}: choose "
            "fractions that do, e.g. load_dataset(path, split_fractions=(0.6, 0.2))."
        )

    def _verified_splits(self, decode: bool) -> dict[str, list[Pair]]:
        """Every split's pairs, verified (from the cache when this state passed before)."""
        problems: list[tuple[str, str]] = []
        splits = _list_splits(self.root, self.split_fractions, problems)
        state, newest = _state(self.root, self.classes, self.split_fractions, splits)
        if problems:
            state = None  # reported below, with the pairs' problems
        elif state is not None and state == self._verified_state:
            return splits
        cached = _cached_notes(self.root, state)
        notes = (
            _verify_pairs(self.root, self.classes, splits, decode, problems)
            if cached is None
            else cached
        )
        if cached is None and decode:
            _save_verdict(self.root, state, newest, notes)
        if cached is not None or decode:
            self._verified_state = state
        for note in notes:
            if note not in self.notes:
                self.notes.append(note)
                print(f"Note: {note}")
        return splits


def load_dataset(
    name_or_path: str | os.PathLike[str] = "shapes",
    *,
    split_fractions: tuple[float, float] | None = None,
) -> Dataset:
    """Open a dataset by name (a folder under ``data/``) or by path.

    ``"shapes"`` is generated on first use (see :func:`helpers.shapes.make_shapes`),
    ``"oxford_pets"`` is downloaded and converted on first use (see
    :func:`helpers.oxford_pets.download_oxford_pets`).
    ``split_fractions=(train, val)`` (the rest is test; default (0.8, 0.1)) choose how a
    folder without splits is divided.
    """
    root = Path(name_or_path)
    if not root.is_absolute() and not root.exists():
        root = DATA_DIR / root
    if str(name_or_path) == "shapes":
        if not root.exists():
            shapes.make_shapes(root)
        elif shapes.outdated(root):
            print(f"{root} was generated by an older version of make_shapes: regenerating it.")
            shapes.make_shapes(root, overwrite=True)
    if str(name_or_path) == "oxford_pets" and not root.exists():
        oxford_pets.download_oxford_pets(root)
    if not root.is_dir():
        available = (
            sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir() and p.name[0] != ".")
            if DATA_DIR.is_dir()
            else []
        )
        raise DatasetError(
            f"Dataset {str(name_or_path)!r} not found (looked for the folder {root}). "
            f"Fix: pass 'shapes', a name under {DATA_DIR} (present: {available or 'none'}), "
            "or the path of a folder in the dataset layout."
        )
    if not (root / "classes.json").exists() and (root / "annotations" / "trimaps").is_dir():
        raise DatasetError(
            f"{root} holds the Oxford-IIIT Pet archives unpacked as they come (images/, "
            "annotations/trimaps/), not the course's layout. Fix: move that folder away (say to "
            f"{root.name}_raw) and run load_dataset('oxford_pets'), which converts the archives; "
            f"put images.tar.gz and annotations.tar.gz in {DATA_DIR / 'downloads'} to skip the "
            "download."
        )
    dataset = Dataset(root=root, classes=read_classes(root))
    if split_fractions is not None:
        dataset.split_fractions = _checked_fractions(root, split_fractions)
    return dataset


def _checked_fractions(root: Path, fractions: tuple[float, float]) -> tuple[float, float]:
    """Validate ``split_fractions`` for ``root``: only a folder without splits is divided."""
    if _split_folders(root):
        raise DatasetError(
            f"{root} has its own train/val/test folders, so split_fractions does not apply. "
            "Fix: move pairs between the split folders, or drop split_fractions."
        )
    train, val = (float(f) for f in fractions)
    if not (train > 0 and val >= 0 and train + val <= 1):
        raise DatasetError(
            f"split_fractions={tuple(fractions)} must be (train, val) with train > 0, val >= 0 "
            "and train + val <= 1 (the rest is test), for example (0.7, 0.15)."
        )
    return train, val


# --- listing: which files pair up, and in which split ------------------------------------------


def _split_folders(root: Path) -> dict[str, Path]:
    """The split folders of ``root``; refuses split folders beside top-level images/ or masks/."""
    folders = {name: root / name for name in SPLITS if (root / name).is_dir()}
    flat = [name + "/" for name in ("images", "masks") if (root / name).is_dir()]
    if folders and flat:
        raise DatasetError(
            f"{root} holds both split folders ({', '.join(n + '/' for n in folders)}) and "
            f"top-level {' + '.join(flat)}: the two layouts cannot be mixed. A dataset is either "
            "<root>/<split>/images + masks (you chose the splits) or <root>/images + masks (the "
            "loader splits them). Fix: move the top-level files into the split folders, or "
            "the split folders' files to the top level."
        )
    return folders


def _list_splits(
    root: Path, fractions: tuple[float, float], problems: list[tuple[str, str]]
) -> dict[str, list[Pair]]:
    """Pairs of each split present in ``root`` (listing problems are appended to ``problems``)."""
    folders = _split_folders(root)
    if folders:
        return {name: _pairs_in(folder, problems) for name, folder in folders.items()}
    if (root / "images").is_dir() or (root / "masks").is_dir():
        return _deterministic_split(_pairs_in(root, problems), fractions)
    return {}


def _files_by_stem(
    folder: Path, suffixes: tuple[str, ...], problems: list[tuple[str, str]]
) -> dict[str, Path]:
    if not folder.is_dir():
        problems.append(
            (str(folder), f"{folder} is missing. Fix: put the files of this split there.")
        )
        return {}
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        try:
            path.name.encode("utf-8")
        except UnicodeEncodeError:
            problems.append((str(path), _bad_name_message(folder, path)))
            continue
        found.setdefault(path.stem, []).append(path)
    for stem, paths in found.items():
        if len(paths) > 1:
            problems.append((str(paths[0]), _same_stem_message(folder, stem, paths)))
    return {stem: paths[0] for stem, paths in found.items() if len(paths) == 1}


def _bad_name_message(folder: Path, path: Path) -> str:
    raw = os.fsencode(path.name)
    return (
        f"The file name {raw!r} in {folder} is not valid UTF-8, so it cannot be split or read by "
        "TensorFlow. Fix: rename it (and its image or mask) with a UTF-8 name."
    )


def _same_stem_message(folder: Path, stem: str, paths: list[Path]) -> str:
    return (
        f"{len(paths)} files in {folder} share the stem {stem!r}: "
        f"{' and '.join(p.name for p in paths)}; the loader cannot tell which one to use. "
        "Fix: delete or rename the stale one(s)."
    )


def _pairs_in(folder: Path, problems: list[tuple[str, str]]) -> list[Pair]:
    images = _files_by_stem(folder / "images", IMAGE_FILE_SUFFIXES, problems)
    masks = _files_by_stem(folder / "masks", MASK_SUFFIXES, problems)
    for missing, present, kind in ((masks, images, "mask"), (images, masks, "image")):
        orphans = sorted(set(present) - set(missing))
        if orphans and (folder / f"{kind}s").is_dir():
            shown = ", ".join(str(present[stem].name) for stem in orphans[:5])
            more = f" and {len(orphans) - 5} more" if len(orphans) > 5 else ""
            problems.append(
                (
                    str(folder),
                    f"No {kind} for {len(orphans)} file(s) in {folder}: {shown}{more}. "
                    f"Fix: add the matching {kind} (same file name stem) or remove the file.",
                )
            )
    return [Pair(images[stem], masks[stem]) for stem in sorted(set(images) & set(masks))]


def _deterministic_split(
    pairs: list[Pair], fractions: tuple[float, float] = DEFAULT_SPLIT_FRACTIONS
) -> dict[str, list[Pair]]:
    """Assign each pair to a split by a hash of its stem, the same on every machine.

    Under ``RANKED_SPLIT_BELOW`` pairs the hash positions are replaced by their ranks, so the
    splits get the asked shares (10 pairs: 8/1/1; by hash bands they came out 4/4/2).
    Then every split whose fraction is above 0 and that the hash left empty takes one pair, the
    one whose hash lies nearest its share, from the largest split that can spare one (val may
    take test's last pair): 3 pairs or more give train, val and test at least one each, 2 pairs
    give train and val one each (the rule of notebook 01).
    """
    train_fraction, val_fraction = fractions
    bands = {
        "train": (0.0, train_fraction),
        "val": (train_fraction, train_fraction + val_fraction),
        "test": (train_fraction + val_fraction, 1.0),
    }
    position = {pair: _hash_position(pair) for pair in pairs}
    if len(pairs) < RANKED_SPLIT_BELOW:  # few pairs: cut the hash order at the fractions
        ranked = sorted(pairs, key=position.__getitem__)
        position = {pair: (rank + 0.5) / len(pairs) for rank, pair in enumerate(ranked)}
    splits: dict[str, list[Pair]] = {
        name: [pair for pair in pairs if low <= position[pair] < high]
        for name, (low, high) in bands.items()
    }
    for name, (low, high) in bands.items():
        # val before test: the recipe cannot train without a val split
        spare = {other: 0 if (name, other) == ("val", "test") else 1 for other in SPLITS}
        donors = [other for other in SPLITS if len(splits[other]) > spare[other]]
        if splits[name] or high <= low or not donors:
            continue
        donor = max(donors, key=lambda other: len(splits[other]))

        def distance(pair: Pair, low: float = low, high: float = high) -> float:
            return max(low - position[pair], position[pair] - high)

        nearest = min(splits[donor], key=distance)
        splits[donor].remove(nearest)
        splits[name] = [nearest]
    return splits


def _hash_position(pair: Pair) -> float:
    """Where a pair's stem hashes to in [0, 1): the same on every machine and every run."""
    digest = hashlib.sha256(pair.image.stem.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _refuse(root: Path, problems: list[tuple[str, str]]) -> None:
    """Raise one :class:`DatasetError` that lists every problem, each fix once."""
    if len(problems) == 1:
        raise DatasetError(problems[0][1])
    by_fix: dict[str, list[tuple[str, str]]] = {}
    for where, message in problems:
        by_fix.setdefault(message.partition(" Fix: ")[2] or message, []).append((where, message))
    lines = [f"{len(problems)} problems in {root}, each with its fix:"]
    for same in by_fix.values():
        lines.append(f"- {same[0][1]}")
        if len(same) > 1:
            names = sorted(os.path.relpath(where, root) for where, _ in same[1:])
            more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
            shown = ", ".join(names[:SHOWN_NAMES]) + more
            lines.append(f"  The same fix applies to {len(names)} more: {shown}")
    raise DatasetError("\n".join(lines))


# --- verification of every pair, cached per dataset state --------------------------------------


def _all_pairs(splits: dict[str, list[Pair]]) -> Iterator[Pair]:
    for pairs in splits.values():
        yield from pairs


def _verify_pairs(
    root: Path,
    classes: Classes,
    splits: dict[str, list[Pair]],
    decode: bool,
    problems: list[tuple[str, str]],
) -> list[str]:
    """Check every pair; raise one error listing all ``problems`` (the listing's and the
    pairs'), or return the notes."""
    modes: dict[str, list[Path]] = {}
    counts = np.zeros(256, dtype=np.int64)
    for pair in _all_pairs(splits):
        try:
            mode, mask_counts = _inspect_pair(pair, classes, decode)
        except DatasetError as error:
            bad = pair.mask if str(pair.mask) in str(error) else pair.image
            problems.append((str(bad), str(error)))
            continue
        modes.setdefault(mode, []).append(pair.image)
        if mask_counts is not None:
            counts += mask_counts
    if decode and not problems:
        problems += _unseen_class_problems(root, classes, counts)
    if problems:
        _refuse(root, problems)
    return _mode_notes(modes) + _small_split_notes(root, splits)


def _mode_notes(modes: dict[str, list[Path]]) -> list[str]:
    """One note per non-RGB image mode, with a count (not one per file)."""
    return [
        f"{len(paths)} image(s) are not RGB (e.g. {paths[0].name}: mode {mode}); "
        "the pipeline converts them to RGB (alpha is dropped)."
        for mode, paths in modes.items()
        if mode != "RGB"
    ]


def _small_split_notes(root: Path, splits: dict[str, list[Pair]]) -> list[str]:
    """One note naming the val/test splits too small to measure anything, or saying that the
    folder is too small to have them at all."""
    total = sum(len(pairs) for pairs in splits.values())
    if 0 < total < len(SPLITS) and not _split_folders(root):
        return [
            f"{root.name} holds {total} pair(s), too few for a test split (3 or more give train, "
            "val and test one each): the model can be scored only on pairs that also chose its "
            "best epoch (or on none), so its scores are optimistic or missing. Fix: add pairs."
        ]
    small = [
        f"{name} ({len(splits[name])} pair(s))"
        for name in ("val", "test")
        if 0 < len(splits.get(name, [])) < MIN_EVAL_PAIRS
    ]
    if not small:
        return []
    return [
        f"the {' and '.join(small)} split(s) of {root.name} are too small to measure anything: "
        "scores (and early stopping or checkpoints chosen on them) are noise. Fix: add pairs, "
        "or for a folder without splits choose the fractions, e.g. "
        "load_dataset(path, split_fractions=(0.6, 0.2))."
    ]


def _unseen_class_problems(
    root: Path, classes: Classes, counts: np.ndarray
) -> list[tuple[str, str]]:
    """With ignored pixels present, a class that never appears means labels were lost."""
    ignore = classes.ignore_index
    unseen = [n for i, n in enumerate(classes.names) if counts[i] == 0]
    if ignore is None or counts[ignore] == 0 or not unseen:
        return []
    return [
        (
            str(root),
            f"In {root}, class(es) {', '.join(unseen)} never appear outside ignored pixels "
            f"(ignore_index {ignore} covers {int(counts[ignore])} pixels): the model would "
            f"never learn them and mean IoU would not notice. Your masks look like 0/{ignore}; "
            f"use convert_mask(path, output, value_map={{{ignore}: 1}}) on each mask. If not, "
            "remove the unused classes from classes.json.",
        )
    ]


def _state(
    root: Path, classes: Classes, fractions: tuple[float, float], splits: dict[str, list[Pair]]
) -> tuple[str | None, float]:
    """A digest of every file's path, size and mtime (and the classes), and the newest mtime."""
    digest = hashlib.sha256(repr((VERIFIER_VERSION, classes, fractions)).encode())
    newest = 0.0
    try:
        for name, pairs in splits.items():
            for path in (p for pair in pairs for p in (pair.image, pair.mask)):
                stat = path.stat()
                newest = max(newest, stat.st_mtime)
                digest.update(f"{name}\0{path.relative_to(root)}\0{stat.st_size}\0".encode())
                digest.update(f"{stat.st_mtime_ns}\n".encode())
    except OSError:
        return None, newest
    return digest.hexdigest(), newest


def _cache_file(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return DATA_DIR / ".verified" / f"{key[:24]}.json"


def _cached_notes(root: Path, state: str | None) -> list[str] | None:
    """The notes of a verified dataset whose files have not changed since, else None."""
    try:
        verdict = json.loads(_cache_file(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state is None or not isinstance(verdict, dict) or verdict.get("state") != state:
        return None
    return [str(note) for note in verdict.get("notes", [])]


def _save_verdict(root: Path, state: str | None, newest: float, notes: list[str]) -> None:
    """Write the verdict atomically; skip it if files changed too recently to trust mtimes."""
    if state is None or newest > time.time() - RACY_SECONDS:
        return
    path = _cache_file(root)
    verdict = {"root": str(root.resolve()), "state": state, "notes": notes}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _prune_verdicts(path.parent)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
        ) as f:
            json.dump(verdict, f)
        os.replace(f.name, path)
    except OSError:
        return  # a read-only data folder: verification simply runs again next time


def _prune_verdicts(folder: Path) -> None:
    """Remove verdicts of dataset folders that no longer exist (temporary ones, moved ones)."""
    for path in folder.glob("*.json"):
        try:
            if not Path(json.loads(path.read_text(encoding="utf-8"))["root"]).exists():
                path.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)


# --- one pair ------------------------------------------------------------------------------------


def _inspect_pair(pair: Pair, classes: Classes, decode: bool) -> tuple[str, np.ndarray | None]:
    """Check one pair; return the image mode and (decoded) the mask's value counts."""
    image_info, _ = _open_checked(pair.image, "image", decode)
    mask_info, mask = _open_checked(pair.mask, "mask", decode)
    if image_info.mode not in ("RGB", "L", "RGBA", "LA", "P", "CMYK", "I;16", "I"):
        raise DatasetError(f"Image {pair.image} has unsupported mode {image_info.mode}.")
    if image_info.format == "TIFF" and pair.image.suffix.lower() in (".tif", ".tiff"):
        raise DatasetError(
            f"Image {pair.image} is a TIFF file: TIFF images are not read (TensorFlow decodes "
            f"PNG, JPEG, GIF, BMP and WebP). Fix: convert them with helpers.data.convert_images("
            f"'{pair.image.parent}'), which writes a PNG beside each and moves the TIFF files "
            f"to {pair.image.parent.name}_tiff/ (nothing is deleted)."
        )
    if image_info.format not in IMAGE_FORMATS:
        raise DatasetError(
            f"Image {pair.image} is a {image_info.format} file, which TensorFlow cannot decode. "
            "Fix: save it as PNG or JPEG."
        )
    _check_mask_format(pair.mask, mask_info)
    for path, info in ((pair.image, image_info), (pair.mask, mask_info)):
        _check_orientation(path, info)
    if image_info.size != mask_info.size:
        raise DatasetError(
            f"Image {pair.image} is {image_info.size[0]}x{image_info.size[1]} but its mask "
            f"{pair.mask} is {mask_info.size[0]}x{mask_info.size[1]} (width x height). "
            "Fix: resize the mask with helpers.pipeline.resize_mask (never bilinear), or "
            "re-export the pair."
        )
    if mask is None:
        return image_info.mode, None
    counts = np.bincount(mask.ravel(), minlength=256)
    _check_mask_values(pair.mask, classes, counts)
    return image_info.mode, counts


def _check_mask_format(path: Path, info: _ImageInfo) -> None:
    """A mask must be an 8-bit, one-channel PNG: each other kind is refused with its fix."""
    if info.format == "JPEG":
        raise DatasetError(
            f"Mask {path} is a JPEG. JPEG compression is lossy and changes class ids at "
            "edges. Fix: export the mask as PNG from the original labels."
        )
    if info.format != "PNG":
        raise DatasetError(
            f"Mask {path} is a {info.format} file; the pipeline decodes PNG masks only. Fix: "
            f"save it as PNG, e.g. convert_mask(path, path.with_suffix('.png'), value_map={{}}),"
            " then delete the original."
        )
    if info.mode == "P":
        raise DatasetError(
            f"Mask {path} is a palette PNG (mode P). Fix: convert it with "
            "helpers.data.convert_mask(path, output, mode='palette') to take palette indices "
            "as class ids, or with colors=... to map the displayed colours."
        )
    if info.mode in ("RGB", "RGBA"):
        raise DatasetError(
            f"Mask {path} has colour channels (mode {info.mode}); a mask needs one "
            "channel of class ids. Fix: convert colour-coded masks with "
            "helpers.data.convert_mask(path, output, colors=classes.colors)."
        )
    if info.mode in ("I;16", "I;16B", "I", "F"):
        raise DatasetError(
            f"Mask {path} has {info.mode} pixels (16/32-bit); masks must be 8-bit. "
            "Fix: save it as an 8-bit single-channel PNG (mode L) with values 0..C-1."
        )
    if info.mode == "1":
        raise DatasetError(
            f"Mask {path} is a 1-bit (black and white) PNG, read as 0/255. Fix: "
            "convert_mask(path, output, value_map={255: 1}) writes class ids 0/1."
        )
    if info.mode != "L":
        raise DatasetError(
            f"Mask {path} has mode {info.mode}; a mask must be a one-channel 8-bit PNG (mode L)."
        )
    if info.bits in (2, 4):
        scale = 255 // (2**info.bits - 1)
        raise DatasetError(
            f"Mask {path} is a {info.bits}-bit greyscale PNG: PNG readers scale its values to "
            f"0..255, so ids 1, 2 come back as {scale}, {2 * scale}. Fix: convert_mask(path, "
            f"output, value_map={{{scale}: 1, {2 * scale}: 2, ...}}) writes an 8-bit mask."
        )


def _check_orientation(path: Path, info: _ImageInfo) -> None:
    if info.orientation not in (None, 1):
        raise DatasetError(
            f"{path} has an EXIF orientation tag ({info.orientation}): viewers show it rotated "
            "or mirrored, but training reads the stored pixels, so the labels would not match. "
            "Fix: store it upright with PIL.ImageOps.exif_transpose(Image.open(path)).save("
            "output) (if it was labelled as displayed; transpose its mask only if it carries "
            "the same tag), or drop the tag if it was labelled on the stored pixels."
        )


@dataclass(frozen=True)
class _ImageInfo:
    format: str | None
    mode: str
    size: tuple[int, int]
    bits: int = 8
    orientation: int | None = None


def _open_checked(path: Path, kind: str, decode: bool) -> tuple[_ImageInfo, np.ndarray | None]:
    """Header information of ``path`` and, decoded, its pixels (masks only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                bits = {"L;1": 1, "L;2": 2, "L;4": 4}.get(_rawmode(image), 8)
                if decode:
                    image.load()
                info = _ImageInfo(image.format, image.mode, image.size, bits, _orientation(image))
                pixels = np.asarray(image) if decode and kind == "mask" else None
    except FileNotFoundError:
        raise DatasetError(f"The {kind} file {path} does not exist.") from None
    except PermissionError:
        raise DatasetError(
            f"The {kind} file {path} cannot be read: permission denied. The file may be fine. "
            f"Fix: make it readable (chmod a+r '{path}') or run as a user who may read it."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DatasetError(
            f"The {kind} file {path} is too large to open safely ({error}). Fix: downscale it "
            "(masks with helpers.pipeline.resize_mask), or, if you trust it, raise "
            "PIL.Image.MAX_IMAGE_PIXELS."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(
            f"The {kind} file {path} is corrupt or truncated ({error}). "
            "Fix: re-export or re-download it, or delete the pair."
        ) from None
    return info, pixels


def _rawmode(image: Image.Image) -> str | None:
    """How the file stores pixels (e.g. 'L;4' for a 4-bit grey PNG), before decoding."""
    args = image.tile[0].args if image.tile else None
    return args if isinstance(args, str) else None


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (1 = upright), if it can be read without decoding the pixels."""
    if image.format == "PNG" and "exif" not in image.info and image.tile:
        return None  # a PNG's EXIF chunk after its pixel data is only read when decoding
    return image.getexif().get(EXIF_ORIENTATION)


def _check_mask_values(path: Path, classes: Classes, counts: np.ndarray) -> None:
    """Refuse values outside the classes, and masks where every labelled pixel is ignored."""
    allowed = np.zeros(256, dtype=bool)
    allowed[: classes.num_classes] = True
    ignore = classes.ignore_index
    if ignore is not None:
        allowed[ignore] = True
    bad = np.flatnonzero((counts > 0) & ~allowed)
    if bad.size:
        defined = f" and ignore_index {ignore}" if ignore is not None else ""
        raise DatasetError(
            f"Mask {path} contains value(s) {bad.tolist()} ({int(counts[bad].sum())} pixels), but "
            f"classes.json defines {classes.num_classes} classes (ids 0..{classes.num_classes - 1})"
            f"{defined}. Fix: add the missing classes to classes.json, set ignore_index, or remap "
            "the mask (0/255 binary masks: convert_mask(path, output, value_map={255: 1}))."
        )
    if ignore is not None and counts[ignore] and not counts[: classes.num_classes].any():
        raise DatasetError(
            f"Mask {path} is ignore_index {ignore} everywhere: nothing in it is labelled, so it "
            "teaches nothing. Fix: remove the pair (image and mask), or label the image."
        )
    if ignore is not None and counts[ignore] and not counts[1 : classes.num_classes].any():
        raise DatasetError(
            f"Mask {path} holds only class 0 and ignore_index {ignore} ({int(counts[ignore])} "
            f"pixels): every non-zero pixel is ignored, so its objects teach nothing. Fix: if "
            f"your masks are 0/{ignore} (object = {ignore}), convert them: convert_mask(path, "
            f"output, value_map={{{ignore}: 1}}); if nothing in an image is labelled, remove "
            "its pair."
        )


def convert_mask(
    source: Path,
    output: Path,
    *,
    mode: str | None = None,
    colors: tuple[tuple[int, int, int], ...] | None = None,
    value_map: dict[int, int] | None = None,
) -> Path:
    """Write ``source`` as a valid mask (8-bit, one channel, class ids) to ``output``.

    Exactly one conversion, chosen explicitly, never guessed:
    ``mode="palette"`` takes the palette indices of a mode-P PNG as class ids;
    ``colors=...`` maps each listed RGB colour to its index (unknown colours raise);
    ``value_map={255: 1}`` renames values (for example 0/255 binary masks to 0/1).
    ``output`` must not exist yet: nothing is overwritten.
    """
    chosen = [mode is not None, colors is not None, value_map is not None]
    if sum(chosen) != 1:
        raise ValueError("Choose exactly one of mode='palette', colors=... or value_map=...")
    if Path(output).exists():
        raise FileExistsError(f"{output} exists; convert_mask never overwrites a file.")
    with Image.open(source) as image:
        if mode == "palette":
            if image.mode != "P":
                raise DatasetError(f"{source} is mode {image.mode}, not a palette PNG.")
            ids = np.asarray(image, dtype=np.uint8)
        elif colors is not None:
            rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
            packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
            ids = np.full(packed.shape, 255, dtype=np.int64)
            for class_id, (r, g, b) in enumerate(colors):
                ids[packed == (r << 16 | g << 8 | b)] = class_id
            unknown = np.unique(packed[ids == 255])
            if unknown.size:
                shown = [((v >> 16) & 255, (v >> 8) & 255, v & 255) for v in unknown[:5].tolist()]
                raise DatasetError(f"{source} has colours not in the colour table: {shown}")
            ids = ids.astype(np.uint8)
        else:
            assert value_map is not None
            if image.mode not in ("L", "1"):
                raise DatasetError(
                    f"{source} is mode {image.mode}, but value_map renames the grey values of a "
                    "one-channel mask (its colours would be read as brightness). Fix: colors=... "
                    "for a colour-coded mask, mode='palette' for a palette PNG."
                )
            values = np.asarray(image.convert("L"))
            lookup = np.arange(256, dtype=np.uint8)
            for old, new in value_map.items():
                lookup[old] = new
            ids = lookup[values]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids).save(output)  # uint8, one channel: mode L
    return Path(output)


def convert_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Convert the TIFF images of ``folder`` (``.tif``/``.tiff``) to 8-bit PNGs beside them and
    move the TIFF files to ``<folder>_tiff/`` next to it: nothing is deleted or overwritten.
    16-bit images are scaled by their own maximum. Returns the PNGs written."""
    folder = Path(folder)
    originals = folder.with_name(f"{folder.name}_tiff")
    written = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff")):
        target, aside = path.with_suffix(".png"), originals / path.name
        if target.exists() or aside.exists():
            raise FileExistsError(
                f"{target if target.exists() else aside} exists; convert_images never "
                "overwrites a file. Move it away, then run convert_images again."
            )
        with Image.open(path) as image:
            pixels = np.asarray(image)
        if pixels.dtype != np.uint8:  # 16-bit or float microscopy images
            pixels = pixels.astype(np.float64) * 255 / max(float(pixels.max()), 1e-12)
            pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(target)
        originals.mkdir(exist_ok=True)
        os.replace(path, aside)
        written.append(target)
    return written


def class_pixel_counts(pairs: list[Pair], num_classes: int) -> np.ndarray:
    """Number of pixels of each class id over all masks (ignore_index pixels are not counted)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for pair in pairs:
        with Image.open(pair.mask) as mask:
            values = np.asarray(mask).ravel()
        counts += np.bincount(values[values < num_classes], minlength=num_classes)
    return counts
