"""Fixtures: tiny datasets written to a temporary folder, never the network."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import helpers  # noqa: F401  (imports TensorFlow quietly before any test module does)

CLASSES_JSON = {
    "names": ["background", "a", "b"],
    "colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
    "ignore_index": 255,
}


def write_pair(root: Path, stem: str, size: tuple[int, int] = (16, 12), value: int = 1) -> None:
    """An RGB image and a mask (width x height = size) with a block of class ``value``."""
    width, height = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), 100, dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[: height // 2, : width // 2] = value
    image[mask > 0] = (200, 50, 50)
    Image.fromarray(image).save(root / "images" / f"{stem}.png")
    Image.fromarray(mask).save(root / "masks" / f"{stem}.png")


@pytest.fixture(autouse=True)
def artifacts_in_a_temporary_folder(tmp_path_factory, monkeypatch):
    """No test writes into the repository's ``artifacts/`` (trainings with a default run folder
    or model path land in a temporary one)."""
    from helpers import training

    monkeypatch.setattr(training, "ARTIFACTS_DIR", tmp_path_factory.mktemp("artifacts"))


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a valid dataset with splits; ``pairs`` pairs per split, in ``tmp_path/name``."""

    def make(pairs: int = 3, classes: dict | None = None, name: str = "dataset") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True)
        (root / "classes.json").write_text(json.dumps(classes or CLASSES_JSON))
        for split in ("train", "val", "test"):
            for index in range(pairs):
                write_pair(root / split, f"{split}_{index}", value=1 + index % 2)
        return root

    return make
