"""Shared code of the semantic-segmentation course.

Importing ``helpers`` first (before ``tensorflow``) imports TensorFlow with its native start-up
log lines silenced, so notebook outputs stay clean and reproducible (see ``helpers.runtime``).
"""

import os
from pathlib import Path

from helpers.runtime import import_tensorflow_quietly

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
# Trained models, checkpoints and logs. The test suite points COURSE_ARTIFACTS_DIR at a folder of
# its own (conftest.py), so that no test run touches the models a reader trained.
ARTIFACTS_DIR = Path(os.environ.get("COURSE_ARTIFACTS_DIR", REPO_ROOT / "artifacts"))

import_tensorflow_quietly()

__all__ = ["ARTIFACTS_DIR", "DATA_DIR", "REPO_ROOT"]
