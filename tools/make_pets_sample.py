"""Build ``data/pets_sample``: the course's committed real-photo dataset, reproducibly.

691 Oxford-IIIT Pet photos with their trimaps, resized so that the shorter side is
``SHORT_SIDE`` pixels (photos as JPEG, masks by the course's majority vote,
``helpers.pipeline.resize_mask``), in the course's layout and class convention (background / pet
/ border, or the border as ``ignore_index`` 255 with ``--border-as-ignore``, the rule of
``helpers.oxford_pets``). The split is fixed: within cats and within dogs, the stems ranked by
a hash of their name give 10 % test, 10 % val and the rest train, so both species are in every
split. One test photo is also kept at full resolution, for notebook 07's "your own photo".

Two sources give the same sample (the source files are checked against ``SOURCES.tsv``):

    python tools/make_pets_sample.py --originals ../shared/data/oxford_pets_originals
    python tools/make_pets_sample.py --archives data/downloads   # the official archives

The originals folder holds ``images/<stem>.jpg`` and ``trimaps/<stem>.png``; the archives are
``images.tar.gz`` and ``annotations.tar.gz`` as ``helpers.oxford_pets`` downloads them. The
output folder is written under a temporary name and renamed when complete; an existing folder is
replaced only with ``--overwrite`` and only if this tool made it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "data" / "pets_sample"
SHORT_SIDE = 160  # the stored photos' shorter side: the lessons train at 128 and 160 px
JPEG_QUALITY = 85
TEST_FRACTION = VAL_FRACTION = 0.1
FULL_RESOLUTION_STEM = "Abyssinian_106"  # 1536x1024  # a test photo kept at its original size
SOURCES = "SOURCES.tsv"
# Quirks of the release, as its README lists them: left out, or converted, with the reason.
LEFT_OUT = {"Abyssinian_34": "GIF data, and its trimap has no pet pixel"}
FIELDS = ("stem", "split", "species", "breed", "image_sha256", "trimap_sha256", "note")


def species(stem: str) -> str:
    """The official rule: a capitalised breed is a cat, a lower-case one a dog."""
    return "cat" if stem[0].isupper() else "dog"


def breed(stem: str) -> str:
    return stem.rsplit("_", 1)[0]


def assign_splits(stems: list[str]) -> dict[str, str]:
    """stem -> split: per species, stems ranked by SHA-256 of the name; 10 % test, 10 % val."""
    splits = {}
    for kind in ("cat", "dog"):
        ranked = sorted(
            (s for s in stems if species(s) == kind),
            key=lambda s: hashlib.sha256(s.encode()).hexdigest(),
        )
        test, val = round(TEST_FRACTION * len(ranked)), round(VAL_FRACTION * len(ranked))
        for index, stem in enumerate(ranked):
            splits[stem] = "test" if index < test else "val" if index < test + val else "train"
    return splits


def read_originals(folder: Path, stems: list[str] | None) -> Iterator[tuple[str, bytes, bytes]]:
    """(stem, image bytes, trimap bytes) from a folder of ``images/`` and ``trimaps/``."""
    names = stems or sorted(p.stem for p in (folder / "images").glob("*.jpg"))
    for stem in names:
        yield (
            stem,
            (folder / "images" / f"{stem}.jpg").read_bytes(),
            (folder / "trimaps" / f"{stem}.png").read_bytes(),
        )


def read_archives(folder: Path, stems: list[str]) -> Iterator[tuple[str, bytes, bytes]]:
    """The same from the official ``images.tar.gz`` and ``annotations.tar.gz`` (one pass each)."""
    wanted = set(stems)
    found: dict[str, dict[str, bytes]] = {"images": {}, "trimaps": {}}
    for archive, prefix, kind, suffix in (
        ("images.tar.gz", "images/", "images", ".jpg"),
        ("annotations.tar.gz", "annotations/trimaps/", "trimaps", ".png"),
    ):
        with tarfile.open(folder / archive, "r:gz") as tar:
            for member in tar:
                name = member.name
                stem = name[len(prefix) : -len(suffix)]
                wanted_file = name.startswith(prefix) and name.endswith(suffix) and stem in wanted
                if member.isfile() and wanted_file:
                    found[kind][stem] = tar.extractfile(member).read()
    missing = sorted(wanted - set(found["images"]) | wanted - set(found["trimaps"]))
    if missing:
        raise SystemExit(f"The archives in {folder} lack {len(missing)} stems: {missing[:5]}")
    for stem in stems:
        yield stem, found["images"][stem], found["trimaps"][stem]


def mask_ids(trimap: bytes, border_as_ignore: bool) -> np.ndarray:
    """Trimap (1 pet, 2 background, 3 border) -> class ids, by ``helpers.oxford_pets``'s rule."""
    from helpers import oxford_pets

    lookup = np.full(256, 0, dtype=np.uint8)
    lookup[oxford_pets.TRIMAP_PET] = 1
    lookup[oxford_pets.TRIMAP_BORDER] = oxford_pets.IGNORE_INDEX if border_as_ignore else 2
    values = np.asarray(Image.open(io.BytesIO(trimap)))
    if not np.isin(values, (1, 2, 3)).all():
        raise SystemExit(f"A trimap holds values other than 1, 2, 3: {np.unique(values)}")
    return lookup[values]


def resized(image: Image.Image, ids: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Shorter side to ``SHORT_SIDE`` (never enlarged): the photo antialiased, the mask by vote."""
    from helpers import pipeline

    width, height = image.size
    scale = min(1.0, SHORT_SIDE / min(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image, ids
    mask = pipeline.resize_mask(ids, (size[1], size[0])).numpy().astype(np.uint8)
    return image.resize(size, Image.Resampling.LANCZOS), mask


def build(
    read: Iterator[tuple[str, bytes, bytes]], output: Path, border_as_ignore: bool
) -> list[dict[str, str]]:
    """Write the sample into the empty folder ``output``; return the rows of ``SOURCES.tsv``."""
    from helpers import oxford_pets

    rows = []
    for stem, image_bytes, trimap_bytes in read:
        row = {
            "stem": stem,
            "species": species(stem),
            "breed": breed(stem),
            "image_sha256": hashlib.sha256(image_bytes).hexdigest(),
            "trimap_sha256": hashlib.sha256(trimap_bytes).hexdigest(),
            "note": LEFT_OUT.get(stem, ""),
        }
        rows.append(row)
        if stem in LEFT_OUT:
            continue
        image = Image.open(io.BytesIO(image_bytes))
        if image.format != "JPEG" or image.mode != "RGB":
            row["note"] = f"{image.format} data ({image.mode}), converted to an RGB JPEG"
        ids = mask_ids(trimap_bytes, border_as_ignore)
        photo = image.convert("RGB")
        if stem == FULL_RESOLUTION_STEM:
            folder = output / "full_resolution"
            folder.mkdir()
            (folder / f"{stem}.jpg").write_bytes(image_bytes)
            Image.fromarray(ids).save(folder / f"{stem}.png", optimize=True)
        row["_photo"], row["_mask"] = resized(photo, ids)
    splits = assign_splits([row["stem"] for row in rows if row["stem"] not in LEFT_OUT])
    for row in rows:
        row["split"] = splits.get(row["stem"], "")
        if row["split"]:
            for kind in ("images", "masks"):
                (output / row["split"] / kind).mkdir(parents=True, exist_ok=True)
            row.pop("_photo").save(
                output / row["split"] / "images" / f"{row['stem']}.jpg",
                quality=JPEG_QUALITY,
                optimize=True,
            )
            Image.fromarray(row.pop("_mask")).save(
                output / row["split"] / "masks" / f"{row['stem']}.png", optimize=True
            )
    classes = oxford_pets.oxford_pets_classes(border_as_ignore).to_json()
    (output / "classes.json").write_text(json.dumps(classes, indent=2) + "\n", encoding="utf-8")
    return rows


README = """# pets_sample: 692 Oxford-IIIT Pet photos with their masks (CC BY-SA 4.0)

Made by `tools/make_pets_sample.py` from the unchanged files of the Oxford-IIIT Pet Dataset: the
photos' shorter side resized to {short_side} px (JPEG, quality {quality}), the trimaps converted
to class ids by `helpers.oxford_pets`'s rule ({classes}) and resized by the course's majority
vote. Split fixed, both species in each: {counts}. `full_resolution/` holds one test photo at its
original size with its mask, for notebook 07. `SOURCES.tsv` lists each stem's split, species,
breed and the SHA-256 of its source files (and the one left out, with the reason);
`SHA256SUMS` every file here.

## Licence and attribution
Derived from the Oxford-IIIT Pet Dataset: O. M. Parkhi, A. Vedaldi, A. Zisserman and
C. V. Jawahar, "Cats and Dogs", IEEE CVPR 2012, https://www.robots.ox.ac.uk/~vgg/data/pets/ ,
available under the Creative Commons Attribution-ShareAlike 4.0 International licence
(https://creativecommons.org/licenses/by-sa/4.0/). The copyright of the images stays with their
owners. This folder (resized photos, converted masks) is shared under the same licence.
"""


def write_records(output: Path, rows: list[dict[str, str]], border_as_ignore: bool) -> None:
    """README.md, ``SOURCES.tsv`` (each stem's split and sources), ``SHA256SUMS`` (every file)."""
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    classes = "background 0, pet 1, border " + ("ignored (255)" if border_as_ignore else "2")
    readme = README.format(
        short_side=SHORT_SIDE,
        quality=JPEG_QUALITY,
        classes=classes,
        counts=", ".join(f"{split} {n}" for split, n in counts.items()),
    )
    (output / "README.md").write_text(readme, encoding="utf-8")
    with open(output / SOURCES, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["stem"]))
    files = sorted(p for p in output.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(output)}" for p in files
    ]
    (output / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")


def listed_stems(sources: Path) -> list[str]:
    with open(sources, encoding="utf-8") as file:
        return [row["stem"] for row in csv.DictReader(file, delimiter="\t")]


def check_sources(rows: list[dict[str, str]], sources: Path) -> None:
    """Refuse source files that differ from those ``sources`` lists (a different release)."""
    with open(sources, encoding="utf-8") as file:
        expected = {row["stem"]: row for row in csv.DictReader(file, delimiter="\t")}
    for row in rows:
        for key in ("image_sha256", "trimap_sha256"):
            if expected[row["stem"]][key] != row[key]:
                raise SystemExit(
                    f"{row['stem']}: its {key.split('_')[0]} differs from the one {sources} lists;"
                    " the sample is made from the official, unchanged files."
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--originals", type=Path, help="a folder of images/ and trimaps/")
    source.add_argument("--archives", type=Path, help="the folder of the two official archives")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--border-as-ignore", action="store_true")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    output = args.output.resolve()
    known = DEFAULT_OUTPUT / SOURCES  # the committed sample's list: the stems to take
    stems = listed_stems(known) if known.is_file() else None
    if args.archives and stems is None:
        raise SystemExit(f"{known} lists the stems to take from the archives; it is missing.")
    if output.exists() and not (args.overwrite and (output / SOURCES).is_file()):
        raise SystemExit(
            f"{output} exists; it is kept. Pass --overwrite to replace a sample this tool made."
        )
    read = (
        read_archives(args.archives, stems)
        if args.archives
        else read_originals(args.originals, stems)
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-partial-", dir=output.parent))
    staging.chmod(0o755)
    try:
        rows = build(read, staging, args.border_as_ignore)
        if stems is not None:
            check_sources(rows, known)
        write_records(staging, rows, args.border_as_ignore)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    print(f"{output}: {counts}, {len(rows) - sum(counts.values())} left out, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
