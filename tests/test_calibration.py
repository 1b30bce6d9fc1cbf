"""helpers.calibration: flip TTA, reliability bins and ECE on hand-computed cases."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.calibration import (
    Reliability,
    expected_calibration_error,
    predict_probabilities,
    reliability_bins,
)

# Four pixels, two classes. Confidences 0.9, 0.6, 0.7, 0.55; the second pixel is wrong.
PROBABILITIES = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
TRUE = np.array([0, 1, 1, 0])


def test_reliability_bins_hand_computed() -> None:
    reliability = reliability_bins(PROBABILITIES, TRUE, num_bins=10)
    np.testing.assert_array_equal(reliability.counts, [0, 0, 0, 0, 0, 1, 1, 1, 0, 1])
    np.testing.assert_array_equal(reliability.correct_sum, [0, 0, 0, 0, 0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(reliability.confidence[5:8], [0.55, 0.6, 0.7])
    np.testing.assert_array_equal(reliability.accuracy[5:8], [1, 0, 1])
    assert np.isnan(reliability.accuracy[0]) and np.isnan(reliability.confidence[8])
    np.testing.assert_allclose(reliability.edges, np.linspace(0, 1, 11))
    assert reliability.num_bins == 10
    # ECE: (|1 - 0.55| + |0 - 0.6| + |1 - 0.7| + |1 - 0.9|) / 4.
    assert expected_calibration_error(reliability) == pytest.approx(1.45 / 4)


def test_two_bins_pool_the_gaps() -> None:
    reliability = reliability_bins(PROBABILITIES, TRUE, num_bins=2)
    np.testing.assert_array_equal(reliability.counts, [0, 4])
    # One bin: accuracy 3/4, mean confidence 2.75/4.
    assert expected_calibration_error(reliability) == pytest.approx(abs(0.75 - 2.75 / 4))


def test_confidence_one_falls_in_the_last_bin_and_perfect_calibration_is_zero() -> None:
    reliability = reliability_bins(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]), 5)
    np.testing.assert_array_equal(reliability.counts, [0, 0, 0, 0, 2])
    assert expected_calibration_error(reliability) == 0


def test_ignored_and_masked_out_pixels_are_not_binned() -> None:
    true = np.array([0, 255, 1, 0])
    reliability = reliability_bins(PROBABILITIES, true, 10, ignore_index=255)
    assert reliability.counts.sum() == 3 and reliability.counts[6] == 0
    where = np.array([True, False, False, True])
    reliability = reliability_bins(PROBABILITIES, TRUE, 10, where=where)
    np.testing.assert_array_equal(np.flatnonzero(reliability.counts), [5, 9])
    assert reliability_bins(PROBABILITIES, TRUE, 10, where=where).counts.sum() == 2
    nothing = reliability_bins(PROBABILITIES, TRUE, 4, where=np.zeros(4, bool))
    assert np.isnan(expected_calibration_error(nothing)), "no pixel binned: no ECE"


def test_bins_of_batches_add_up_to_the_bins_of_all_pixels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 6, 6, 3))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    true = rng.integers(0, 3, size=(2, 6, 6))
    whole = reliability_bins(probabilities, true, 10)
    parts = reliability_bins(probabilities[:1], true[:1]) + reliability_bins(
        probabilities[1:], true[1:]
    )
    np.testing.assert_array_equal(parts.counts, whole.counts)
    np.testing.assert_allclose(parts.confidence_sum, whole.confidence_sum)
    np.testing.assert_array_equal(parts.correct_sum, whole.correct_sum)
    assert isinstance(parts, Reliability)
    with pytest.raises(TypeError):
        whole + reliability_bins(probabilities, true, 5)  # different bins do not add
    with pytest.raises(TypeError):
        whole + 1


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="y_true needs shape"):
        reliability_bins(PROBABILITIES, TRUE[:3])
    with pytest.raises(ValueError, match="num_bins"):
        reliability_bins(PROBABILITIES, TRUE, num_bins=0)


def _tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 6, 3))
    return keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))


def _softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def test_predict_probabilities_is_the_softmax_of_the_logits() -> None:
    model = _tiny_model()
    images = np.random.default_rng(1).random((5, 4, 6, 3)).astype(np.float32)
    probabilities = predict_probabilities(model, images, batch_size=2)
    assert probabilities.shape == (5, 4, 6, 3) and probabilities.dtype == np.float32
    expected = _softmax(keras.ops.convert_to_numpy(model(images)))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_flip_tta_averages_with_the_mirrored_prediction_mirrored_back() -> None:
    model = _tiny_model()
    images = np.random.default_rng(2).random((3, 4, 6, 3)).astype(np.float32)
    plain = _softmax(keras.ops.convert_to_numpy(model(images)))
    mirrored = _softmax(keras.ops.convert_to_numpy(model(images[:, :, ::-1].copy())))[:, :, ::-1]
    averaged = predict_probabilities(model, images, flip_tta=True)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=-1), 1, atol=1e-5)
    # Property: with flip TTA, mirroring the input mirrors the output exactly.
    of_mirror = predict_probabilities(model, images[:, :, ::-1], flip_tta=True)
    np.testing.assert_allclose(of_mirror, averaged[:, :, ::-1], atol=1e-6)
    assert not np.allclose(plain, averaged, atol=1e-3), "this model is not mirror-symmetric"
