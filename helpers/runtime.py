"""Seeds, the device report and runtime detection (introduced in notebook 01)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import random
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration of the block.

    TensorFlow's C++ runtime writes start-up lines ("oneDNN custom operations are on",
    "Could not find cuda drivers") straight to the process's stderr before its logging is
    configured, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. Jupyter forwards that stream
    into the notebook, where it would become part of the stored outputs.
    """
    sys.stderr.flush()
    saved_fd = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (if installed) and probe its devices without native log noise.

    Python exceptions still propagate: only the C++ runtime's log lines are dropped. The level
    is 3 (errors too) because TensorFlow 2.21 logs a spurious ERROR line ("NodeDef mentions
    attribute use_unbounded_threadpool") whenever ``model.predict`` runs after ``fit``; real
    errors still arrive as Python exceptions. Set ``TF_CPP_MIN_LOG_LEVEL`` yourself to override.
    On a machine without TensorFlow (for example a JAX-only GPU box) this does nothing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the first device probe logs too


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow ops deterministic."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries still draw from the legacy global RNG
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def in_colab() -> bool:
    """Whether this code runs inside a Google Colab runtime."""
    return "google.colab" in sys.modules or importlib.util.find_spec("google.colab") is not None


CPUINFO = Path("/proc/cpuinfo")  # Linux; elsewhere missing, and the CPU claims nothing


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of :data:`CPUINFO` (None where there is none)."""
    try:
        with CPUINFO.open(encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@cache
def cpu_name() -> str:
    """The CPU model name, as the operating system reports it."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


@cache
def cpu_has_amx_bfloat16() -> bool:
    """True when the CPU has AMX tiles for bfloat16 (Intel Xeon since Sapphire Rapids).

    There oneDNN runs bfloat16 convolutions on the tiles: measured on 2 cores, a large matmul
    ran 4x faster than in float32 and a U-Net step with 32 base filters 1.5-1.8x, but the
    recipe's U-Net (8 filters) no faster (``benchmarks/precision.py``). Without AMX
    (AVX512-BF16 only, or AVX2), ``mixed_bfloat16`` gained little or ran slower.
    """
    return "amx_bf16" in (_cpuinfo_field("flags") or "").split()


def gpu_details() -> list[dict[str, object]]:
    """Name and compute capability of every GPU TensorFlow can see (empty on a CPU runtime)."""
    import tensorflow as tf

    details = []
    for device in tf.config.list_physical_devices("GPU"):
        info = tf.config.experimental.get_device_details(device)
        details.append(
            {
                "name": info.get("device_name", device.name),
                "compute_capability": info.get("compute_capability"),
            }
        )
    return details


def mixed_precision_capable() -> bool:
    """True when a GPU with compute capability >= 7.0 (Tensor Cores) is present.

    Only then does ``mixed_float16`` speed training up; on a CPU it is much slower.
    """
    return any(
        gpu["compute_capability"] is not None and tuple(gpu["compute_capability"]) >= (7, 0)
        for gpu in gpu_details()
    )


def mixed_precision_policy() -> str:
    """The 16-bit Keras policy this runtime has units for: ``mixed_float16`` with GPUs,
    ``mixed_bfloat16`` on a CPU (useful only where :func:`cpu_has_amx_bfloat16`)."""
    return "mixed_float16" if gpu_details() else "mixed_bfloat16"


def precision_advice() -> str:
    """Whether 16-bit maths pays on this runtime, and why, in a few words."""
    if gpu_details():
        if mixed_precision_capable():
            return "mixed_float16 useful (Tensor Cores)"
        return "mixed_float16 not useful (no Tensor Cores)"
    if cpu_has_amx_bfloat16():
        return "mixed_bfloat16 useful for wide layers only (AMX tiles)"
    return "mixed_bfloat16 not useful (no AMX tiles)"


def device_report() -> str:
    """One line: library versions, the device in use and mixed-precision capability."""
    import keras
    import tensorflow as tf

    gpus = gpu_details()
    if gpus:
        device = "GPU: " + ", ".join(str(gpu["name"]) for gpu in gpus)
    else:
        device = f"CPU only: {cpu_name()} ({os.cpu_count()} cores)"
    return (
        f"TensorFlow {tf.__version__} | Keras {keras.__version__} | "
        f"Python {platform.python_version()} | {device} | {precision_advice()}"
        + (" | Colab" if in_colab() else "")
    )
