"""helpers.tiling: tile positions, windows, and exactness on translation-equivariant models."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from helpers import models, tiling


def test_tile_starts_cover_the_length_with_the_requested_overlap():
    assert tiling.tile_starts(100, 32, 0) == [0, 32, 64, 68]
    assert tiling.tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tiling.tile_starts(20, 32, 8) == [0]
    assert tiling.tile_starts(64, 32, 0) == [0, 32]
    for length, tile, overlap in [(100, 32, 8), (257, 64, 16), (64, 64, 0)]:
        starts = tiling.tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    with pytest.raises(ValueError, match="overlap must be in"):
        tiling.tile_starts(100, 32, 32)


@pytest.mark.parametrize("kind", ["gaussian", "linear", "uniform"])
def test_blend_windows_are_positive_symmetric_and_peak_in_the_centre(kind):
    window = tiling.blend_window(16, kind)
    assert window.shape == (16, 16) and np.all(window > 0)
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])
    assert window[8, 8] >= window[0, 0]
    with pytest.raises(ValueError, match="kind must be"):
        tiling.blend_window(16, "cosine")


def pointwise_model(channels: int = 4) -> keras.Model:
    """A per-pixel model: its output at a pixel depends on that pixel only."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(8, 1, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(channels, 1)(hidden))


@pytest.mark.parametrize(
    ("size", "tile", "overlap", "blend"),
    [((64, 64), 32, 0, "uniform"), ((70, 45), 32, 8, "gaussian"), ((50, 90), 24, 12, "linear")],
)
def test_tiling_is_exact_for_a_pointwise_model(size, tile, overlap, blend):
    model = pointwise_model()
    image = np.random.default_rng(1).random((*size, 3)).astype(np.float32)
    whole = model(image[None], training=False).numpy()[0]
    tiled = tiling.predict_tiled(
        lambda batch: model(batch, training=False), image, tile, overlap, blend, batch_size=3
    )
    assert tiled.shape == (*size, 4)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_small_images_are_padded_and_cropped_back():
    model = pointwise_model(channels=2)
    image = np.random.default_rng(2).random((10, 20, 3)).astype(np.float32)
    tiled = tiling.predict_tiled(lambda batch: model(batch, training=False), image, tile=32)
    np.testing.assert_allclose(tiled, model(image[None]).numpy()[0], atol=1e-5)


def test_overlap_reduces_seams_of_a_model_with_context():
    """A U-Net's border pixels lack context; blended overlapping tiles come closer to the truth."""
    model = models.unet(3, depth=2, base_filters=4)
    image = np.random.default_rng(3).random((96, 96, 3)).astype(np.float32)
    whole = model(image[None], training=False).numpy()[0]

    def predict(batch):
        return model(batch, training=False)

    plain = tiling.predict_tiled(predict, image, tile=32, overlap=0, blend="uniform")
    blended = tiling.predict_tiled(predict, image, tile=32, overlap=16, blend="gaussian")
    assert np.abs(blended - whole).mean() < np.abs(plain - whole).mean()
