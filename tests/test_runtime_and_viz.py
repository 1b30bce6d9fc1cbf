"""helpers.runtime and helpers.viz."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import REPO_ROOT, data, runtime, shapes, viz


def test_seed_everything_repeats_random_draws():
    import keras

    draws = []
    for _ in range(2):
        runtime.seed_everything(123)
        legacy_numpy = np.random.rand()  # noqa: NPY002 - the global RNG is what gets seeded
        draws.append((random.random(), legacy_numpy, float(keras.random.uniform((1,))[0])))
    assert draws[0] == draws[1]
    assert os.environ["PYTHONHASHSEED"] == "123"


def test_device_report_is_one_line_with_versions():
    report = runtime.device_report()
    assert "\n" not in report
    assert report.startswith("TensorFlow 2.") and "Keras 3." in report and "Python 3." in report
    assert ("CPU only" in report) or ("GPU:" in report)
    assert runtime.mixed_precision_policy() in report and runtime.precision_advice() in report


def test_cpu_only_runtime_is_not_mixed_precision_capable():
    if not runtime.gpu_details():
        assert runtime.mixed_precision_capable() is False
        assert runtime.mixed_precision_policy() == "mixed_bfloat16"
    assert runtime.cpu_name()


@pytest.mark.parametrize(
    ("flags", "amx"),
    [("fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile", True), ("fpu avx2 avx512_bf16", False)],
)
def test_amx_bfloat16_is_read_from_the_cpu_flags(tmp_path, monkeypatch, flags, amx):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    monkeypatch.setattr(runtime, "CPUINFO", cpuinfo)
    runtime.cpu_has_amx_bfloat16.cache_clear()
    runtime.cpu_name.cache_clear()
    try:
        assert runtime.cpu_has_amx_bfloat16() is amx
        monkeypatch.setattr(runtime, "gpu_details", lambda: [])
        advice = runtime.precision_advice()
        assert advice.startswith("mixed_bfloat16 ") and ("not useful" in advice) is not amx
        assert runtime.cpu_name() == "Some CPU"
        monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "missing")
        runtime.cpu_has_amx_bfloat16.cache_clear()
        assert runtime.cpu_has_amx_bfloat16() is False  # no /proc/cpuinfo: no claim
    finally:
        runtime.cpu_has_amx_bfloat16.cache_clear()
        runtime.cpu_name.cache_clear()


def test_in_colab_is_false_here(monkeypatch):
    assert runtime.in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert runtime.in_colab() is True


def test_importing_helpers_silences_tensorflow_start_up_lines():
    code = (
        "import helpers, keras, numpy as np, tensorflow as tf\n"
        "print(tf.constant(2) * 3)\n"
        "keras.utils.set_random_seed(0); tf.config.experimental.enable_op_determinism()\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "model.compile('adam', 'mse')\n"
        "model.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)\n"
        "model.predict(np.zeros((3, 4)), verbose=0)  # TF 2.21 logs a spurious error here\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
        env=environment,
    )
    assert "tf.Tensor(6" in result.stdout
    assert result.stderr == "", result.stderr


def test_colorize_and_overlay():
    classes = data.Classes(("bg", "a"), ((0, 0, 0), (255, 0, 0)), ignore_index=255)
    mask = np.array([[0, 1], [255, 1]], np.uint8)
    colored = viz.colorize(mask, classes)
    assert colored.dtype == np.uint8
    assert colored.tolist() == [[[0, 0, 0], [255, 0, 0]], [[255, 255, 255], [255, 0, 0]]]
    image = np.full((2, 2, 3), 255, np.uint8)
    blended = viz.overlay(image, mask, classes, alpha=0.5)
    assert np.allclose(blended[0, 0], 1.0), "background stays clear"
    assert np.allclose(blended[0, 1], [1.0, 0.5, 0.5])


def test_figures_are_drawn_with_legend_and_labels():
    classes = shapes.SHAPES_CLASSES
    rng = np.random.default_rng(0)
    scenes = [shapes.shapes_scene(rng, 32) for _ in range(2)]
    images, masks = [s[0] for s in scenes], [s[1] for s in scenes]
    figure = viz.show_pairs(images, masks, classes, predictions=masks)
    assert len(figure.axes) == 8
    assert [t.get_text() for t in figure.legends[0].get_texts()][-1] == "255 ignore"
    ax = viz.plot_class_frequencies(np.array([90, 5, 3, 2, 0]), classes)
    assert ax.get_yscale() == "log" and "share" in ax.get_ylabel()
    plt.close("all")


def test_snapshot_row_and_model_comparison_grid():
    classes = shapes.SHAPES_CLASSES
    image, mask = shapes.shapes_scene(np.random.default_rng(1), 32)
    figure = viz.show_snapshots(image, {0: mask * 0, 5: mask}, classes, truth=mask)
    assert [axis.get_title() for axis in figure.axes] == [
        "image",
        "truth",
        "before training",
        "epoch 5",
    ]
    grid = viz.compare_predictions([image, image], [mask, mask], {"A": [mask, mask]}, classes)
    assert len(grid.axes) == 6 and grid.axes[2].get_title() == "A"
    plt.close("all")
