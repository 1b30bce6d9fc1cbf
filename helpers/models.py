"""The course's models, from the blog post's classifier to a U-Net. Taught in notebook 03, which
writes the FCN and the U-Net cell by cell (``build_fcn``, ``build_unet``) and checks that they
are these models; notebooks 04-07 build them from here. Notebook 07 teaches transfer learning:
the classifier's conv stages as a pretrained encoder, and an ImageNet backbone.

Backend-neutral Keras 3 (``keras.layers`` and ``keras.ops`` only, no ``tf.*``), so the same code
runs on TensorFlow, JAX or PyTorch. Every segmentation model returns per-pixel **logits** of
shape ``(H, W, num_classes)`` in float32, also under a mixed-precision policy: no softmax inside,
the loss applies it (``from_logits=True``).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from pathlib import Path

import keras
from keras import layers

from helpers import REPO_ROOT

# The ImageNet weights of MobileNetV2 (alpha 1.0, no top) that ship with the course (weights/).
IMAGENET_WEIGHTS = REPO_ROOT / "weights" / "mobilenet_v2_1.0_no_top_imagenet.weights.h5"
IMAGENET_WEIGHTS_SHA256 = "b0763dbf82d6890d86859267907928fc467fbbb4bba461d054965f4dfb400d33"

MOBILENET_V2_SKIPS = (  # MobileNetV2 layers whose outputs feed the decoder, at 1/2 .. 1/16
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
)


def seed_classifier(num_classes: int, image_size: int = 224) -> keras.Model:
    """The blog post's model, as written: an image *classifier* with one softmax per image.

    Conv2D/MaxPool x3 -> Flatten -> Dense(128) -> Dense(num_classes, softmax). Its output has
    shape ``(batch, num_classes)``: one label per image, no mask.
    """
    return keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="blog_post_classifier",
    )


def image_size_problem(image_size: int | None, depth: int = 3, model: str = "U-Net") -> str | None:
    """Why ``image_size`` cannot go through ``depth`` poolings (None when it can).

    Each pooling halves the side, and the decoder doubles it back: the side must be a positive
    multiple of ``2**depth``, or the skip connections meet maps of different sizes.
    """
    step = 2**depth
    if image_size is None or (image_size > 0 and image_size % step == 0):
        return None
    lower = image_size // step * step
    choices = " or ".join(str(size) for size in (lower, lower + step) if size > 0)
    poolings = f"{depth} pooling{'s' * (depth != 1)}"
    return (
        f"image_size must be a multiple of {step} for this {model} ({poolings}): "
        f"{image_size} -> use {choices}"
    )


def _check_image_size(image_size: int | None, depth: int, model: str) -> None:
    """Raise ``ValueError`` with :func:`image_size_problem`'s message, if there is one."""
    problem = image_size_problem(image_size, depth, model)
    if problem:
        raise ValueError(problem)


def conv_block(x, filters: int, momentum: float, name: str):
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU (taught in notebook 03)."""
    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
        x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{index}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{index}")(x)
    return x


def _logits(x, num_classes: int):
    """The per-pixel classifier: a 1x1 convolution, kept in float32 under mixed precision."""
    return layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)


def _encoder(x, base_filters: int, depth: int, momentum: float) -> tuple:
    """``depth`` stages of :func:`conv_block` + 2x2 max pooling, filters doubling, named
    ``down1`` / ``pool1`` ...: the pooled output and each stage's features (the skips)."""
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, momentum, name=f"down{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level + 1}")(x)
    return x, skips


def fcn(
    num_classes: int,
    image_size: int | None = None,
    base_filters: int = 16,
    batchnorm_momentum: float = 0.9,
) -> keras.Model:
    """A fully convolutional network: the classifier's conv trunk, a 1x1 conv, then upsampling.

    Flatten + Dense is replaced by a 1x1 convolution (a Dense layer applied at every pixel with
    shared weights). The logits come out at 1/8 resolution and are upsampled bilinearly, so
    masks are coarse. ``image_size=None`` accepts any size that is a multiple of 8.
    """
    _check_image_size(image_size, 3, "FCN")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x, _ = _encoder(inputs, base_filters, 3, batchnorm_momentum)
    x = _logits(x, num_classes)
    outputs = layers.UpSampling2D(8, interpolation="bilinear", dtype="float32", name="upsample")(x)
    return keras.Model(inputs, outputs, name="fcn")


def unet(
    num_classes: int,
    image_size: int | None = None,
    base_filters: int = 8,
    depth: int = 3,
    batchnorm_momentum: float = 0.9,
    skip_connections: bool = True,
) -> keras.Model:
    """A U-Net: an encoder-decoder whose decoder sees the encoder's features (skip connections).

    ``depth`` poolings halve the resolution each time (image sides must be multiples of
    ``2**depth``); filters double at each level. BatchNorm uses momentum 0.9 so that its
    validation statistics follow training quickly. ``skip_connections=False`` builds the same
    network without them (an exercise of notebook 03). Any other ``image_size`` is refused
    with the nearest sizes that work.
    """
    _check_image_size(image_size, depth, "U-Net")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x, skips = _encoder(inputs, base_filters, depth, batchnorm_momentum)
    x = conv_block(x, base_filters * 2**depth, batchnorm_momentum, name="bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level + 1}")(x)
        if skip_connections:
            x = layers.Concatenate(name=f"skip{level + 1}")([x, skips[level]])
        x = conv_block(x, filters, batchnorm_momentum, name=f"dec{level + 1}")
    return keras.Model(inputs, _logits(x, num_classes), name="unet")


def encoder_classifier(
    num_labels: int,
    image_size: int | None = None,
    base_filters: int = 8,
    depth: int = 3,
    batchnorm_momentum: float = 0.9,
) -> keras.Model:
    """The blog post's classifier reshaped into a U-Net encoder (taught in notebook 07).

    ``depth`` conv + pool stages named exactly as :func:`unet`'s encoder (``down1`` ...), then
    global average pooling and one logit per label: *which* classes are in the image (several
    at once, so a sigmoid per label in the loss, not a softmax). Image-level labels are cheap;
    the stages learn features from them that :func:`transfer_encoder` gives to a U-Net.
    """
    _check_image_size(image_size, depth, "classifier")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x, _ = _encoder(inputs, base_filters, depth, batchnorm_momentum)
    x = layers.GlobalAveragePooling2D(name="average")(x)
    outputs = layers.Dense(num_labels, dtype="float32", name="labels")(x)
    return keras.Model(inputs, outputs, name="encoder_classifier")


def encoder_layers(model: keras.Model) -> list[str]:
    """Names of the layers with weights in the encoder stages (``down1`` ... ``downN``)."""
    return [layer.name for layer in model.layers if layer.weights and layer.name.startswith("down")]


def transfer_encoder(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the encoder weights of ``source`` into the same-named layers of ``target``.

    Returns the names of the layers copied. Shapes must match (same ``base_filters``/``depth``).
    """
    names = encoder_layers(source)
    for name in names:
        target.get_layer(name).set_weights(source.get_layer(name).get_weights())
    return names


def set_trainable(chosen: Iterable[layers.Layer], trainable: bool) -> None:
    """Freeze (``trainable=False``) or unfreeze the ``chosen`` layers; compile again afterwards.

    Unfreezing leaves BatchNormalization layers frozen: a frozen BatchNorm runs in inference
    mode, so fine-tuning on a few small batches does not overwrite the statistics it learnt.
    A nested model (a backbone) is set as a whole, then its layers one by one.
    """
    for layer in chosen:
        layer.trainable = trainable and not isinstance(layer, layers.BatchNormalization)
        if isinstance(layer, keras.Model) and trainable:
            set_trainable(layer.layers, trainable)


def imagenet_weights(path: Path = IMAGENET_WEIGHTS) -> Path:
    """The shipped ImageNet MobileNetV2 weights, after checking their SHA-256."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. Fix: restore it from the course repository (weights/), or pass "
            'weights=None (random) or the path of a backbone ".weights.h5" file.'
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != IMAGENET_WEIGHTS_SHA256:
        raise ValueError(
            f"{path} is not the file the course ships (SHA-256 {digest[:12]}..., expected "
            f"{IMAGENET_WEIGHTS_SHA256[:12]}...). Fix: restore it from the course repository."
        )
    return path


def mobilenet_v2_unet(
    num_classes: int,
    image_size: int | None = None,
    weights: str | None = None,
    alpha: float = 0.35,
    decoder_filters: tuple[int, ...] = (64, 32, 16, 8),
    batchnorm_momentum: float = 0.9,
) -> keras.Model:
    """A U-Net whose encoder is Keras' MobileNetV2 (as the TensorFlow tutorial), taught in 07.

    ``weights``: None (random), ``"imagenet"`` (with ``alpha=1.0`` the file that ships with the
    course, checked, offline; other widths are downloaded once by Keras) or the path of a
    backbone ``.weights.h5`` file. Inputs are images in [0, 1], rescaled inside the model to
    the [-1, 1] MobileNetV2 expects. The outputs of :data:`MOBILENET_V2_SKIPS` (1/2 .. 1/16)
    feed a decoder of transposed convolutions and conv blocks; logits at full resolution. The
    backbone is the nested model ``model.get_layer("mobilenet_v2")`` (freeze it as a whole).
    Sides must be multiples of 32.
    """
    _check_image_size(image_size, 5, "MobileNetV2 U-Net")
    if weights == "imagenet" and alpha == 1.0:
        weights = str(imagenet_weights())
    inputs = keras.Input((image_size, image_size, 3), name="image")
    with warnings.catch_warnings():  # "weights for input shape (224, 224) will be loaded": fine
        warnings.filterwarnings("ignore", message=".*input_shape.*", category=UserWarning)
        backbone = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), alpha=alpha, include_top=False, weights=weights
        )
    features = keras.Model(
        backbone.input,
        [backbone.get_layer(name).output for name in MOBILENET_V2_SKIPS]
        + [backbone.get_layer("block_16_project").output],
        name="mobilenet_v2",
    )
    *skips, x = features(layers.Rescaling(2.0, offset=-1.0, name="to_minus_one_one")(inputs))
    for level, (skip, filters) in enumerate(zip(reversed(skips), decoder_filters, strict=True)):
        name = f"dec{len(skips) - level}"
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up_{name}")(x)
        x = layers.Concatenate(name=f"skip_{name}")([x, skip])
        x = conv_block(x, filters, batchnorm_momentum, name=name)
    x = layers.Conv2DTranspose(decoder_filters[-1], 2, strides=2, padding="same", name="up_full")(x)
    return keras.Model(inputs, _logits(x, num_classes), name="mobilenet_v2_unet")
