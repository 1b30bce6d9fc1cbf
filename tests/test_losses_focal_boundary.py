"""helpers.losses for notebook 06: focal loss, boundary weights and the extra recipe losses."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import boundaries, losses, models, training


def _logits_for(labels: np.ndarray, num_classes: int, confidence: float) -> np.ndarray:
    return (np.eye(num_classes)[np.where(labels == 255, 0, labels)] * confidence).astype(np.float32)


def _random(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


LABELS = np.array([[[0, 1, 2, 2], [2, 1, 255, 0], [0, 0, 1, 1]]])  # (1, 3, 4), one ignored


def _cross_entropy(ignore_index=255):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_index)


def test_focal_with_gamma_zero_is_cross_entropy_with_and_without_sample_weights():
    logits = _random((1, 3, 4, 3))
    focal = losses.FocalLoss(gamma=0.0, ignore_index=255)
    ce = _cross_entropy()
    assert float(focal(LABELS, logits)) == pytest.approx(float(ce(LABELS, logits)), rel=1e-5)
    weights = np.random.default_rng(1).uniform(0.5, 3.0, size=LABELS.shape).astype(np.float32)
    assert float(focal(LABELS, logits, sample_weight=weights)) == pytest.approx(
        float(ce(LABELS, logits, sample_weight=weights)), rel=1e-5
    )
    no_ignore = np.where(LABELS == 255, 0, LABELS)
    assert float(losses.FocalLoss(0.0)(no_ignore, logits)) == pytest.approx(
        float(_cross_entropy(None)(no_ignore, logits)), rel=1e-5
    )


def test_focal_value_by_hand_and_down_weights_easy_pixels():
    labels = np.array([[0, 1]])
    probabilities = np.array([[[0.9, 0.1], [0.6, 0.4]]], np.float32)  # p_t = 0.9 and 0.4
    value = float(losses.FocalLoss(gamma=2.0)(labels, np.log(probabilities)))
    expected = np.mean([-(0.1**2) * np.log(0.9), -(0.6**2) * np.log(0.4)])
    assert value == pytest.approx(expected, rel=1e-5)
    ce = float(_cross_entropy(None)(labels, np.log(probabilities)))
    assert value < ce, "the focal factor only ever shrinks the loss"


def test_losses_are_minimal_for_perfect_predictions():
    perfect = _logits_for(LABELS, 3, 30.0)
    for loss in (
        losses.FocalLoss(gamma=2.0, ignore_index=255),
        losses.BoundaryWeightedCrossEntropy(ignore_index=255),
    ):
        assert float(loss(LABELS, perfect)) == pytest.approx(0.0, abs=1e-6)
        assert float(loss(LABELS, _logits_for(LABELS, 3, 0.0))) > 0.1  # uniform guesses


@pytest.mark.parametrize(
    "loss",
    [
        losses.FocalLoss(gamma=2.0, ignore_index=255),
        losses.BoundaryWeightedCrossEntropy(ignore_index=255, boundary_weight=3.0, width=1),
    ],
    ids=["focal", "boundary"],
)
def test_gradients_are_finite_and_ignored_pixels_change_nothing(loss):
    logits = tf.Variable(_random((1, 3, 4, 3), seed=2))
    with tf.GradientTape() as tape:
        value = loss(LABELS, logits)
    gradient = tape.gradient(value, logits).numpy()
    assert np.isfinite(float(value)) and np.all(np.isfinite(gradient))
    assert np.all(gradient[0, 1, 2] == 0), "the ignored pixel gets no gradient"
    changed = logits.numpy()
    changed[0, 1, 2] = [0.0, 0.0, 50.0]
    assert float(loss(LABELS, changed)) == pytest.approx(float(value), rel=1e-6)
    # Confident, correct predictions: gradients stay finite (no 0 * inf from the focal factor).
    with tf.GradientTape() as tape:
        perfect = tf.Variable(_logits_for(LABELS, 3, 80.0))
        confident = loss(LABELS, perfect)
    assert np.all(np.isfinite(tape.gradient(confident, perfect).numpy()))


def test_boundary_weights_follow_the_distance_to_boundary():
    mask = np.zeros((12, 12), np.uint8)
    mask[3:9, 3:9] = 1
    mask[0, :] = 255  # a row of ignored pixels
    weights = losses.boundary_weights(mask, width=1, boundary_weight=4.0, ignore_index=255)
    near = boundaries.distance_to_boundary(mask, max_distance=1) == 1
    valid = mask != 255
    assert np.all(weights[~valid] == 0)
    assert weights[valid].mean() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(weights[near & valid] / weights[~near & valid].max(), 5.0)
    assert weights[6, 6] == weights[11, 11] < weights[3, 3], "interior and far pixels weigh less"
    batch = losses.boundary_weights(np.stack([mask, np.zeros_like(mask)]), width=1)
    np.testing.assert_allclose(batch[1], 1.0)  # no boundary: plain weights


def test_boundary_weighted_cross_entropy_equals_cross_entropy_with_boundary_weights():
    masks = np.random.default_rng(3).integers(0, 3, size=(2, 10, 10))
    masks[:, :5, :5] = 0  # a uniform corner, so there is an interior too
    masks[0, 9, :] = 255
    logits = _random((2, 10, 10, 3), seed=4)
    loss = losses.BoundaryWeightedCrossEntropy(ignore_index=255, boundary_weight=2.0, width=1)
    weights = losses.boundary_weights(masks, width=1, boundary_weight=2.0, ignore_index=255)
    # Keras' mean is over the labelled pixels; the weights average 1 over each image's.
    per_pixel = _cross_entropy()(masks, logits, sample_weight=weights)
    assert float(loss(masks, logits)) == pytest.approx(float(per_pixel), rel=1e-5)
    plain = losses.BoundaryWeightedCrossEntropy(ignore_index=255, boundary_weight=0.0)
    assert float(plain(masks, logits)) == pytest.approx(float(_cross_entropy()(masks, logits)))


def test_new_losses_serialise_and_reject_bad_settings():
    focal = losses.FocalLoss.from_config(losses.FocalLoss(1.5, 255).get_config())
    assert (focal.gamma, focal.ignore_index) == (1.5, 255)
    config = losses.BoundaryWeightedCrossEntropy(255, 2.0, 3).get_config()
    restored = losses.BoundaryWeightedCrossEntropy.from_config(config)
    assert (restored.ignore_index, restored.boundary_weight, restored.width) == (255, 2.0, 3)
    with pytest.raises(ValueError, match="gamma"):
        losses.FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="width"):
        losses.BoundaryWeightedCrossEntropy(width=0)


@pytest.mark.parametrize("name", ["dice", "focal", "boundary_cross_entropy"])
def test_recipe_compiles_and_trains_with_the_new_losses(name, tmp_path):
    model = models.unet(3, image_size=16, base_filters=2, depth=2)
    training.compile_for_segmentation(model, 3, 255, 1e-2, loss=name)
    images = _random((4, 16, 16, 3), seed=5)
    masks = np.zeros((4, 16, 16), np.int32)
    masks[:, 4:12, 4:12] = 1
    masks[:, 6:9, 6:9] = 2
    masks[:, 0] = 255
    history = model.fit(images, masks, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "model.keras"
    model.save(path)
    assert keras.models.load_model(path, safe_mode=True).loss.name == model.loss.name


def test_existing_loss_names_are_unchanged():
    model = models.unet(3, image_size=16, base_filters=2, depth=2)
    training.compile_for_segmentation(model, 3, 255, 1e-3)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert training.TrainConfig().loss == "cross_entropy_dice"
    with pytest.raises(ValueError, match="loss must be one of"):
        training.compile_for_segmentation(model, 3, 255, 1e-3, loss="hinge")
