"""Shared code of the semantic-segmentation course.

Importing ``helpers`` first (before ``tensorflow``) imports TensorFlow with its native start-up
log lines silenced, so notebook outputs stay clean and reproducible (see ``helpers.runtime``).
"""

from pathlib import Path

from helpers.runtime import import_tensorflow_quietly

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
ARTIFACTS_DIR = REPO_ROOT / "artifacts"

import_tensorflow_quietly()

__all__ = ["ARTIFACTS_DIR", "DATA_DIR", "REPO_ROOT"]
