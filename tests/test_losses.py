"""helpers.losses and per-pixel class weights in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import data, losses, pipeline


def test_class_weights_favour_rare_classes_and_keep_the_loss_scale():
    counts = np.array([900, 90, 10, 0])
    weights = losses.class_weights_from_counts(counts)
    assert weights[3] == 0, "a class without pixels gets no weight"
    assert weights[0] < weights[1] < weights[2]
    np.testing.assert_allclose(weights[:3] / weights[0], np.sqrt([1, 10, 90]), rtol=1e-6)
    assert np.sum(weights * counts) / counts.sum() == pytest.approx(1.0, rel=1e-6)
    full = losses.class_weights_from_counts(counts, power=1.0)
    np.testing.assert_allclose(full[:3] * counts[:3] / counts.sum(), 1 / 3, rtol=1e-6)


@pytest.mark.parametrize("counts", [[0, 0], [[1, 2]], [3, -1]])
def test_class_weights_reject_bad_counts(counts):
    with pytest.raises(ValueError, match="non-negative pixel counts"):
        losses.class_weights_from_counts(np.array(counts))


def test_pipeline_adds_per_pixel_weights_with_zero_on_ignored_pixels(tmp_path):
    root = data.make_shapes(tmp_path / "s", split_sizes={"train": 4}, image_size=16)
    pairs = data.load_dataset(root).split("train")
    mask = np.asarray(Image.open(pairs[0].mask)).copy()
    mask[:2] = 255  # two rows of ignored pixels
    Image.fromarray(mask).save(pairs[0].mask)
    weights = np.array([0.5, 2.0, 3.0, 4.0, 5.0], np.float32)
    images, masks, sample_weights = next(
        iter(pipeline.make_pipeline(pairs, 16, 4, class_weights=weights))
    )
    assert images.shape == (4, 16, 16, 3)
    masks, sample_weights = masks.numpy(), sample_weights.numpy()
    assert np.all(sample_weights[0, :2] == 0), "ignored pixels weigh nothing"
    labelled = masks < 5
    np.testing.assert_array_equal(sample_weights[labelled], weights[masks[labelled]])
