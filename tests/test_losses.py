"""helpers.losses and per-pixel class weights in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import data, losses, pipeline, shapes


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
    root = shapes.make_shapes(tmp_path / "s", split_sizes={"train": 4}, image_size=16)
    pairs = data.load_dataset(root).split("train")
    mask = np.asarray(Image.open(pairs[0].mask)).copy()
    mask[:2] = 255  # two rows of ignored pixels
    Image.fromarray(mask).save(pairs[0].mask)
    weights = np.array([0.5, 2.0, 3.0, 4.0, 5.0], np.float32)
    images, masks, sample_weights = next(
        iter(pipeline.make_pipeline(pairs, 16, 4, class_weights=weights, num_classes=5))
    )
    assert images.shape == (4, 16, 16, 3)
    masks, sample_weights = masks.numpy(), sample_weights.numpy()
    assert np.all(sample_weights[0, :2] == 0), "ignored pixels weigh nothing"
    labelled = masks < 5
    np.testing.assert_array_equal(sample_weights[labelled], weights[masks[labelled]])


def _logits_for(labels: np.ndarray, num_classes: int, confidence: float) -> np.ndarray:
    return (np.eye(num_classes)[np.where(labels == 255, 0, labels)] * confidence).astype(np.float32)


def test_dice_loss_is_minimal_for_perfect_predictions_and_honours_ignore_index():
    labels = np.array([[[0, 1, 2], [2, 1, 255]]])
    dice = losses.DiceLoss(num_classes=3, ignore_index=255)
    assert float(dice(labels, _logits_for(labels, 3, 30.0))) == pytest.approx(0.0, abs=1e-6)
    assert float(dice(labels, _logits_for(labels, 3, 0.0))) > 0.3  # uniform guesses
    # What the ignored pixel predicts changes nothing.
    logits = _logits_for(labels, 3, 2.0)
    changed = logits.copy()
    changed[0, 1, 2] = [0.0, 0.0, 50.0]
    assert float(dice(labels, logits)) == pytest.approx(float(dice(labels, changed)), rel=1e-6)


def test_dice_loss_value_by_hand():
    labels = np.array([[0, 1]])
    logits = np.log(np.array([[[0.75, 0.25], [0.5, 0.5]]], np.float32))
    # class 0: overlap 0.75, sizes (0.75 + 0.5) + 1; class 1: overlap 0.5, sizes 0.75 + 1
    expected = 1 - np.mean([(1.5 + 1) / (2.25 + 1), (1.0 + 1) / (1.75 + 1)])
    value = float(losses.DiceLoss(num_classes=2, smooth=1.0)(labels, logits))
    assert value == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_dice_has_finite_gradients_and_serialises():
    import keras
    import tensorflow as tf

    labels = np.array([[[0, 1], [255, 2]]])
    logits = tf.Variable(np.random.default_rng(0).normal(size=(1, 2, 2, 3)).astype(np.float32))
    loss = losses.CrossEntropyDiceLoss(num_classes=3, ignore_index=255, dice_weight=0.5)
    with tf.GradientTape() as tape:
        value = loss(labels, logits)
    gradient = tape.gradient(value, logits).numpy()
    assert np.all(np.isfinite(gradient)) and np.isfinite(float(value))
    assert np.all(gradient[0, 1, 0] == 0), "the ignored pixel gets no gradient"
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    dice = losses.DiceLoss(3, 255)
    assert float(value) == pytest.approx(
        float(ce(labels, logits)) + 0.5 * float(dice(labels, logits)), rel=1e-6
    )
    restored = losses.CrossEntropyDiceLoss.from_config(loss.get_config())
    assert restored.dice_weight == 0.5 and restored.ignore_index == 255
    assert losses.DiceLoss.from_config(dice.get_config()).num_classes == 3


def test_every_loss_class_is_registered_for_saving():
    """A model compiled with one of these losses reloads by name (``helpers>ClassName``)."""
    import keras

    for name in ("DiceLoss", "CrossEntropyDiceLoss", "FocalLoss", "BoundaryWeightedCrossEntropy"):
        assert keras.saving.get_registered_object(f"helpers>{name}") is getattr(losses, name)
    assert keras.saving.get_registered_object("helpers>_per_replica_share") is None
