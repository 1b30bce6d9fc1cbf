"""helpers.viz evaluation plots: titles, labels and contents; every figure is closed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import calibration, data, metrics, viz

CLASSES = data.Classes(("bg", "a", "b"), ((0, 0, 0), (255, 0, 0), (0, 255, 0)), ignore_index=255)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_confusion_matrix_heatmap_is_normalised_by_row():
    cm = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])  # class b never true: an empty row
    ax = viz.plot_confusion_matrix(cm, CLASSES)
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert "100 %" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bg", "a", "b"]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["80.0%", "20.0%", "0.0%", "25.0%", "75.0%", "0.0%"]
    np.testing.assert_allclose(ax.images[0].get_array()[1, :2], [25, 75])
    assert "share" in ax.figure.axes[-1].get_ylabel(), "the colour bar says what it shows"


def test_per_class_bars_in_class_colours_with_one_hatch_per_score():
    scores = {"IoU": np.array([0.9, 0.5, np.nan]), "Dice": np.array([0.95, 0.67, np.nan])}
    ax = viz.plot_per_class(scores, CLASSES, title="Scores", ylabel="score")
    assert ax.get_title() == "Scores" and ax.get_ylabel() == "score"
    assert len(ax.patches) == 6
    assert ax.patches[1].get_facecolor()[:3] == pytest.approx((1, 0, 0))
    assert ax.patches[0].get_hatch() in (None, "") and ax.patches[3].get_hatch() == "///"
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["0.90", "0.50", "", "0.95", "0.67", ""]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["IoU", "Dice"]


def test_reliability_diagram_shows_bins_diagonal_and_ece():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    reliability = calibration.reliability_bins(probabilities, np.array([0, 1, 1, 0]), 10)
    ax = viz.plot_reliability_diagram(reliability, title="Val")
    assert ax.get_title() == "Val\nECE = 0.3625"
    assert "confidence" in ax.get_xlabel() and "accuracy" in ax.get_ylabel()
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [1, 0, 1, 1]  # bins 5, 6, 7, 9
    assert [t.get_text() for t in ax.texts] == ["25.0%"] * 4


def test_region_scores_scatter_with_bucket_means():
    true = np.array([[[0, 0, 1], [0, 1, 1]], [[2, 2, 2], [2, 2, 0]]])
    pred = np.array([[[0, 0, 1], [0, 0, 1]], [[2, 2, 2], [2, 2, 2]]])
    regions = metrics.region_scores(true, pred, 3, exclude=(0,))
    ax = viz.plot_region_scores(regions, CLASSES, edges=[1, 4, 8])
    assert ax.get_xscale() == "log" and "size" in ax.get_xlabel() and ax.get_title()
    assert len(ax.collections[0].get_offsets()) == 2
    assert [t.get_text() for t in ax.texts] == ["0.67\nn=1", "0.83\nn=1"]
    assert ax.get_xlim()[0] == pytest.approx(3 / 1.5), "a little left of the smallest region"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a", "b", "mean of size bucket"]


def test_errors_by_distance_figure_has_two_labelled_panels():
    figure = viz.plot_errors_by_distance(np.array([10, 20, 70]), np.array([5, 2, 1]))
    rate, share = figure.axes
    assert [t.get_text() for t in rate.get_xticklabels()] == ["1", "2", ">2"]
    assert [p.get_height() for p in rate.patches] == pytest.approx([50, 10, 100 / 70])
    assert "error rate" in rate.get_ylabel() and "distance" in share.get_xlabel()
    assert [t.get_text() for t in share.get_legend().get_texts()] == ["all pixels", "wrong pixels"]


def test_error_grid_marks_wrong_pixels_red_and_ignored_white():
    image = np.full((2, 2, 3), 255, np.uint8)
    mask = np.array([[0, 1], [255, 1]])
    prediction = np.array([[0, 0], [1, 1]])
    errors = viz.error_map(image, mask, prediction, CLASSES)
    np.testing.assert_allclose(errors[0, 1], np.array(viz.ERROR_COLOR) / 255)
    np.testing.assert_allclose(errors[1, 0], 1.0)
    np.testing.assert_allclose(errors[0, 0], 0.65)  # correct: the image, faded to grey
    figure = viz.show_errors([image, image], [mask, mask], [prediction, mask], CLASSES, ["x", "y"])
    assert len(figure.axes) == 8
    assert [axis.get_title() for axis in figure.axes[:4]] == [
        "image",
        "truth",
        "prediction",
        "errors (red)",
    ]
    assert figure.axes[4].get_ylabel() == "y"
    assert [t.get_text() for t in figure.legends[0].get_texts()][-1] == "wrong"
