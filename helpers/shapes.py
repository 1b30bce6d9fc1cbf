"""The offline ``shapes`` dataset: random scenes of circles, squares, triangles and stars.

Introduced in notebook 01. :func:`make_shapes` writes the dataset in the layout of
:mod:`helpers.layout` (``load_dataset("shapes")`` calls it on first use, and again when an
older version of it made the folder); :func:`shapes_scene` draws one scene.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from helpers import DATA_DIR
from helpers.layout import GENERATOR_MARKER, Classes, publish

SHAPES_CLASSES = Classes(
    names=("background", "circle", "square", "triangle", "star"),
    colors=((40, 40, 40), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25)),
    ignore_index=255,
)
SHAPES_SPLIT_SIZES = {"train": 480, "val": 96, "test": 96}
# Calibrated for the CPU training scale (64x64, half the stored side), where a star is still
# 17-23 pixels across and the smallest square or circle 23: with smaller objects, or stronger
# blur, stripes and noise, nearly all errors were half-pixel shifts of outlines, and the recipe
# plateaued near 0.85 validation mean IoU instead of 0.9 within two minutes (issue 4).
# Radii as fractions of the image side: stars are the small, rare class (~1.2% of the pixels).
SHAPE_RADIUS = (0.18, 0.32)
STAR_RADIUS = (0.13, 0.18)
STAR_PROBABILITY = 0.3  # share of images with a star
STAR_INNER_RATIO = 0.5  # inner / outer radius of the five-pointed star
# Largest rotation of polygons away from upright (squares axis-aligned, triangles pointing up).
MAX_ROTATION_DEGREES = 15.0
BLUR_PROBABILITY = 0.15  # share of shapes drawn with soft (Gaussian-blurred) edges
STRIPE_AMPLITUDE = 6.0  # brightness swing of the background's stripes (0..255 scale)
NOISE_SIGMA = 6.0  # per-pixel Gaussian noise (0..255 scale)
# Bumped whenever the generator's output changes: load_dataset("shapes") then regenerates an
# older generated copy (never a folder make_shapes did not write).
SHAPES_VERSION = 2
# The marker's "generator": this module's name, then the names of older copies (make_shapes was
# in helpers.data until the split), so a copy made there is still taken as generated.
GENERATOR = "helpers.shapes.make_shapes"
FORMER_GENERATORS = ("helpers.data.make_shapes",)


def make_shapes(
    root: str | os.PathLike[str] = DATA_DIR / "shapes",
    *,
    split_sizes: dict[str, int] | None = None,
    image_size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
    object_scale: int | None = None,
) -> Path:
    """Generate the offline ``shapes`` dataset into ``root`` and return ``root``.

    Images are RGB scenes of random-coloured circles, squares, triangles and (rarely, small)
    stars on noisy textured backgrounds; the *shape*, not the colour, decides the class.
    Shapes overlap, and about one in seven has soft (blurred) edges. Deterministic from ``seed``.
    ``object_scale`` makes large scenes of small objects (see :func:`shapes_scene`).

    The folder is written under a temporary name and renamed when complete, so a half-written
    dataset is never taken for a finished one. An existing ``root`` is kept unless
    ``overwrite=True``, and even then only a folder this function generated is replaced.
    """
    root = Path(root)
    sizes = dict(SHAPES_SPLIT_SIZES if split_sizes is None else split_sizes)
    if root.exists():
        if not overwrite:
            raise FileExistsError(
                f"{root} exists; it is kept as it is. Pass overwrite=True to regenerate it."
            )
        if _marker(root) is None:
            raise FileExistsError(
                f"{root} exists and was not made by make_shapes; it is never replaced. "
                "Choose another folder or move it away."
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-partial-", dir=root.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a dataset is for everyone who can read data/
    try:
        (staging / "classes.json").write_text(
            json.dumps(SHAPES_CLASSES.to_json(), indent=2) + "\n", encoding="utf-8"
        )
        for split_number, (split, count) in enumerate(sizes.items()):
            (staging / split / "images").mkdir(parents=True)
            (staging / split / "masks").mkdir(parents=True)

            def write_pair(index: int, split: str = split, split_number: int = split_number):
                # One generator per pair: the result does not depend on thread scheduling.
                rng = np.random.default_rng([seed, split_number, index])
                image, mask = shapes_scene(rng, image_size, object_scale)
                stem = f"{split}_{index:05d}"
                for array, folder in ((image, "images"), (mask, "masks")):
                    Image.fromarray(array).save(
                        staging / split / folder / f"{stem}.png", compress_level=1
                    )

            # PIL and NumPy release the GIL for most of the work, so threads use every core.
            with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
                list(pool.map(write_pair, range(count)))
        marker = {
            "generator": GENERATOR,
            "version": SHAPES_VERSION,
            "seed": seed,
            "image_size": image_size,
            "object_scale": object_scale,
            "split_sizes": sizes,
        }
        (staging / GENERATOR_MARKER).write_text(
            json.dumps(marker, indent=2) + "\n", encoding="utf-8"
        )
        # Only a regeneration that was asked for replaces `root`. Without overwrite, a `root` that
        # exists now was published meanwhile by another process (two notebooks starting at once,
        # `make test`'s two workers): keep theirs, which may be in use, and drop this copy.
        replace = overwrite and root.exists()
        if replace:
            _move_aside_foreign_files(root)
        publish(staging, root, replace=replace)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return root


# What make_shapes writes: anything else in its folder was added by someone else.
_GENERATED_FILE = re.compile(r"classes\.json|GENERATED\.json|(\w+)/(images|masks)/\1_\d{5}\.png")


def _move_aside_foreign_files(root: Path) -> Path | None:
    """Move the files under ``root`` that make_shapes did not write to a sibling folder.

    Regenerating replaces ``root`` as a whole; this keeps a reader's own files (never deleted).
    Returns the folder they were moved to, or None if there were none.
    """
    foreign = [
        Path(folder, name).relative_to(root)
        for folder, _, names in os.walk(root)
        for name in names
        if not _GENERATED_FILE.fullmatch(Path(folder, name).relative_to(root).as_posix())
    ]
    if not foreign:
        return None
    kept = root.parent / f"{root.name}-kept-{time.strftime('%Y%m%d-%H%M%S')}"
    while kept.exists():
        kept = kept.with_name(kept.name + "-")
    for relative in foreign:
        (kept / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(root / relative, kept / relative)
    print(
        f"Moved {len(foreign)} file(s) that make_shapes did not write from {root} to {kept} "
        "before regenerating it (nothing was deleted)."
    )
    return kept


def outdated(root: Path) -> bool:
    """True if ``root`` holds a ``shapes`` dataset that an older make_shapes generated."""
    made = _marker(root)
    return made is not None and made.get("version") != SHAPES_VERSION


def _marker(root: Path) -> dict[str, object] | None:
    """The generator marker of ``root`` if make_shapes (of any version) wrote it, else None."""
    try:
        made = json.loads((root / GENERATOR_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    generated = isinstance(made, dict) and made.get("generator") in (GENERATOR, *FORMER_GENERATORS)
    return made if generated else None


def _textured_background(rng: np.random.Generator, size: int, cells: int = 1) -> np.ndarray:
    """Smooth colour blotches and faint stripes, as float32 RGB in [0, 255].

    ``cells`` per side: a large scene keeps the blotch size of ``cells`` x ``cells`` small ones.
    """
    coarse = rng.uniform(40, 200, size=(4 * cells, 4 * cells, 3)).astype(np.uint8)
    blotches = np.asarray(
        Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32
    )
    y, x = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, math.pi), rng.uniform(6, 20)
    stripes = STRIPE_AMPLITUDE * np.sin(
        (x * math.cos(angle) + y * math.sin(angle)) * 2 * math.pi / period
    )
    return blotches + stripes[..., None].astype(np.float32)


def _shape_polygon(kind: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple]:
    if kind == "square":
        corners, radii = 4, [radius] * 4
    elif kind == "triangle":
        corners, radii = 3, [radius * 1.15] * 3
    else:  # star: five points alternating between outer and inner radius
        inner = radius * STAR_INNER_RATIO
        corners, radii = 10, [radius if i % 2 == 0 else inner for i in range(10)]
    return [
        (
            cx + r * math.cos(angle + 2 * math.pi * i / corners),
            cy + r * math.sin(angle + 2 * math.pi * i / corners),
        )
        for i, r in enumerate(radii)
    ]


def shapes_scene(
    rng: np.random.Generator, size: int = 128, object_scale: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One ``shapes`` image (uint8 RGB) and its mask (uint8 class ids), drawn with ``rng``.

    ``object_scale`` (default: ``size``) is the side of the scene that sets the objects' sizes
    and density. A *large scene* (notebook 06) keeps small objects on a big canvas:
    ``shapes_scene(rng, 1024, object_scale=128)`` looks like 8 x 8 ordinary scenes side by side,
    without seams. ``size`` must then be a multiple of ``object_scale``.
    """
    scale = object_scale or size
    if size % scale:
        raise ValueError(f"size {size} must be a multiple of object_scale {scale}")
    cells = size // scale
    image = _textured_background(rng, size, cells)
    mask = Image.new("L", (size, size), 0)
    kinds = ["circle", "square", "triangle"]
    placed = []  # (kind, cell row, cell column)
    for cell in range(cells * cells):
        chosen = [kinds[i] for i in rng.integers(0, 3, size=rng.integers(1, 4))]
        if rng.random() < STAR_PROBABILITY:  # the rare class: small stars in some images
            chosen.append("star")
        placed += [(kind, *divmod(cell, cells)) for kind in chosen]
    blur = scale / 64
    for kind, row, column in placed:
        class_id = SHAPES_CLASSES.names.index(kind)
        radius = scale * rng.uniform(*(STAR_RADIUS if kind == "star" else SHAPE_RADIUS))
        cx, cy = rng.uniform(radius, scale - radius, size=2) + np.array([column, row]) * scale
        # Draw in a window around the object (a large scene has hundreds of them).
        reach = 1.15 * radius + 4 * blur + 2
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x1, y1 = min(size, int(cx + reach) + 1), min(size, int(cy + reach) + 1)
        layer = Image.new("L", (x1 - x0, y1 - y0), 0)
        draw = ImageDraw.Draw(layer)
        lx, ly = cx - x0, cy - y0
        if kind == "circle":
            draw.ellipse((lx - radius, ly - radius, lx + radius, ly + radius), fill=255)
        else:
            upright = {"square": math.pi / 4, "triangle": -math.pi / 2, "star": -math.pi / 2}[kind]
            turn = math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
            draw.polygon(_shape_polygon(kind, lx, ly, radius, upright + turn), fill=255)
        mask.paste(class_id, (x0, y0), mask=layer)  # later shapes cover earlier ones
        if rng.random() < BLUR_PROBABILITY:  # a soft, blurred boundary: the label stays sharp
            layer = layer.filter(ImageFilter.GaussianBlur(radius=blur))
        alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255
        color = rng.uniform(0, 255, size=3).astype(np.float32)
        window = image[y0:y1, x0:x1]
        window += (color - window) * alpha
    image += NOISE_SIGMA * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), np.asarray(mask)
