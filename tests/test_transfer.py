"""Notebook 07's helpers: the encoder transfer, freezing, the MobileNetV2 U-Net with weights from
a local file, photos at full resolution (EXIF, size, tiles), and the notebook's own export."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from notebook_cells import cell_defining, run
from PIL import Image

from helpers import models, tiling, training

NOTEBOOK = "07_transfer_learning_and_your_photos"


def test_the_classifier_encoder_goes_into_the_unet_weight_for_weight():
    classifier = models.encoder_classifier(4, base_filters=4)
    assert classifier.output.shape == (None, 4)
    keras.utils.set_random_seed(1)
    unet = models.unet(5, base_filters=4)
    untouched = unet.get_layer("bottleneck_conv1").get_weights()[0].copy()
    names = models.transfer_encoder(classifier, unet)
    assert names == models.encoder_layers(classifier)
    assert {name.split("_")[0] for name in names} == {"down1", "down2", "down3"}
    for name in names:
        for copied, original in zip(
            unet.get_layer(name).get_weights(),
            classifier.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(copied, original)
    np.testing.assert_array_equal(unet.get_layer("bottleneck_conv1").get_weights()[0], untouched)


def test_a_frozen_encoder_does_not_move_while_the_decoder_trains():
    unet = models.unet(3, 16, base_filters=2)
    encoder = [unet.get_layer(name) for name in models.encoder_layers(unet)]
    models.set_trainable(encoder, False)
    before = {weight.path: weight.numpy().copy() for layer in encoder for weight in layer.weights}
    decoder_before = unet.get_layer("dec1_conv1").get_weights()[0].copy()
    training.compile_for_segmentation(unet, 3, 255, 1e-2)
    images = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    masks = np.random.default_rng(1).integers(0, 3, (4, 16, 16))
    unet.fit(images, masks, epochs=2, batch_size=2, verbose=0)
    for layer in encoder:  # kernels, BatchNorm scales and its statistics: all unchanged
        for weight in layer.weights:
            np.testing.assert_array_equal(weight.numpy(), before[weight.path])
    assert not np.array_equal(unet.get_layer("dec1_conv1").get_weights()[0], decoder_before)


def test_unfreezing_leaves_batchnorm_frozen_also_inside_a_backbone():
    unet = models.unet(3, 16, base_filters=2)
    encoder = [unet.get_layer(name) for name in models.encoder_layers(unet)]
    models.set_trainable(encoder, False)
    models.set_trainable(encoder, True)
    for layer in encoder:
        assert layer.trainable == (not isinstance(layer, keras.layers.BatchNormalization))
    backbone_unet = models.mobilenet_v2_unet(3, 32)
    backbone = backbone_unet.get_layer("mobilenet_v2")
    models.set_trainable([backbone], False)
    assert not backbone.trainable_weights
    models.set_trainable([backbone], True)
    norms = [
        layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and not any(layer.trainable for layer in norms)
    assert backbone.get_layer("Conv1").trainable


def test_mobilenet_v2_unet_loads_backbone_weights_from_a_local_file(tmp_path):
    """The path the notebook takes with ImageNet weights, without the network: Keras reads a
    weights file the same way it reads the downloaded one."""
    keras.utils.set_random_seed(3)
    source = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    model = models.mobilenet_v2_unet(4, None, weights=str(path))  # any multiple of 32
    loaded = model.get_layer("mobilenet_v2")
    for name in ("Conv1", "block_6_expand", "block_16_project"):
        for mine, theirs in zip(
            loaded.get_layer(name).get_weights(), source.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(mine, theirs)
    assert model(np.zeros((2, 64, 96, 3), np.float32)).shape == (2, 64, 96, 4)


def test_mobilenet_v2_unet_refuses_sizes_its_poolings_cannot_take():
    with pytest.raises(ValueError, match="multiple of 32"):
        models.mobilenet_v2_unet(3, 48)


def test_load_photo_turns_a_photo_upright_by_its_exif_tag(tmp_path):
    upright = np.zeros((20, 30, 3), np.uint8)
    upright[:5] = (255, 0, 0)  # a red top edge
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = tmp_path / "phone.png"
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    assert np.asarray(Image.open(path)).shape == (30, 20, 3)
    np.testing.assert_array_equal(tiling.load_photo(path), upright)
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((4, 6), 7, np.uint8)).save(grey)
    assert tiling.load_photo(grey).shape == (4, 6, 3)


def test_load_photo_names_a_file_it_cannot_read(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(ValueError, match=r"notes\.jpg"):
        tiling.load_photo(path)


@pytest.mark.parametrize(
    ("height", "width", "side", "expected"),
    [
        (3000, 4000, 64, (64, 88)),
        (128, 128, 64, (64, 64)),
        (37, 53, 64, (64, 88)),
        (10, 5, 8, (16, 8)),
    ],
)
def test_model_input_size_keeps_the_aspect_ratio_in_multiples_of_eight(
    height, width, side, expected
):
    assert tiling.model_input_size(height, width, side) == expected


def colour_logits(images) -> np.ndarray:
    """A stand-in model: the logits are the colour channels, so argmax is the dominant colour."""
    return 10.0 * np.asarray(images, np.float32)


def two_colour_photo(height: int, width: int) -> np.ndarray:
    photo = np.zeros((height, width, 3), np.uint8)
    photo[:, : width // 2, 0] = 255  # left half red: label 0
    photo[:, width // 2 :, 2] = 255  # right half blue: label 2
    return photo


@pytest.mark.parametrize("tile", [None, 16])
def test_predict_full_resolution_returns_logits_at_the_photos_own_size(tile):
    photo = two_colour_photo(75, 123)
    logits = tiling.predict_full_resolution(colour_logits, photo, side=32, tile=tile)
    assert logits.shape == (75, 123, 3)
    labels = logits.argmax(axis=-1)
    assert (labels[:, :55] == 0).all() and (labels[:, 68:] == 2).all()


def test_predict_full_resolution_tiles_a_large_input():
    calls = []

    def recording(images):
        calls.append(images.shape)
        return colour_logits(images)

    tiling.predict_full_resolution(recording, two_colour_photo(64, 64), side=64, tile=32)
    assert calls and all(shape[1:3] == (32, 32) for shape in calls)
    calls.clear()
    tiling.predict_full_resolution(recording, two_colour_photo(64, 64), side=64)
    assert calls == [(1, 64, 64, 3)]


def test_the_notebooks_exported_model_agrees_with_keras(tmp_path):
    """Notebook 07's own export_for_serving on a tiny U-Net: reloaded with TensorFlow alone, it
    takes uint8 images of any size and gives the masks that predict_full_resolution gives."""
    namespace = {"keras": keras, "tf": tf, "Path": type(tmp_path)}
    run(cell_defining(NOTEBOOK, "def export_for_serving"), namespace)
    keras.utils.set_random_seed(5)
    model = models.unet(3, base_filters=2)
    namespace["export_for_serving"](model, tmp_path / "served", side=16)
    served = tf.saved_model.load(str(tmp_path / "served"))
    rng = np.random.default_rng(0)
    for height, width in ((16, 16), (40, 24), (33, 57)):
        photos = rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8)
        masks = served.serve(photos)["mask"].numpy()
        assert masks.shape == (2, height, width) and masks.dtype == np.uint8
        for photo, mask in zip(photos, masks, strict=True):
            logits = tiling.predict_full_resolution(
                lambda images: model(images, training=False), photo, side=16
            )
            assert np.mean(logits.argmax(axis=-1) == mask) > 0.999


def test_the_shipped_imagenet_weights_are_checked_before_use(tmp_path):
    assert models.imagenet_weights() == models.IMAGENET_WEIGHTS  # the committed file is intact
    changed = tmp_path / "backbone.weights.h5"
    data = bytearray(models.IMAGENET_WEIGHTS.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of one weight changed
    changed.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not the file the course ships"):
        models.imagenet_weights(changed)
    with pytest.raises(FileNotFoundError, match="weights/"):
        models.imagenet_weights(tmp_path / "missing.weights.h5")


def test_mobilenet_v2_unet_loads_the_shipped_imagenet_weights_offline():
    model = models.mobilenet_v2_unet(3, 32, weights="imagenet", alpha=1.0)
    reference = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=1.0, include_top=False, weights=None
    )
    random_kernel = reference.get_layer("Conv1").get_weights()[0]
    reference.load_weights(models.IMAGENET_WEIGHTS)
    for name in ("Conv1", "block_16_project"):
        loaded = model.get_layer("mobilenet_v2").get_layer(name).get_weights()[0]
        np.testing.assert_array_equal(loaded, reference.get_layer(name).get_weights()[0])
    assert not np.allclose(random_kernel, reference.get_layer("Conv1").get_weights()[0])
