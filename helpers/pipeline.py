"""The tf.data input pipeline: files -> decoded, resized, augmented batches (notebook 01).

Order matters and is the lesson of notebook 01::

    file pairs -> parallel decode + resize -> cache -> shuffle -> joint random augmentation
               -> batch -> prefetch

``cache`` sits *before* the random step, so every epoch sees new augmentations; images are
resized bilinearly (antialiased), masks by :func:`resize_mask`: each output label is the label
that covers most of the output pixel, centred like the image, so no fractional label appears.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from helpers.layout import Pair

AUTOTUNE = tf.data.AUTOTUNE


def decode_pair(
    image_path: tf.Tensor, mask_path: tf.Tensor, image_size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """Read one pair: image float32 RGB in [0, 1] and mask int32 (H, W), both at image_size."""
    image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 0..255 -> float 0..1
    image = tf.image.resize(image, image_size, method="bilinear", antialias=True)
    mask = tf.io.decode_png(tf.io.read_file(mask_path))  # as stored: a mask has one channel
    one_channel = tf.debugging.Assert(
        tf.equal(tf.shape(mask)[-1], 1),
        [
            "A mask must be one channel of class ids (an RGB or palette mask would be read as "
            "grey values). Fix: convert it with helpers.data.convert_mask. The file:",
            mask_path,
        ],
    )
    with tf.control_dependencies([one_channel]):
        mask = tf.identity(mask[..., 0])
    return tf.clip_by_value(image, 0.0, 1.0), resize_mask(mask, image_size)


def resize_mask(mask: tf.Tensor, size: tuple[int, int] | tf.Tensor) -> tf.Tensor:
    """Resize a ``(H, W)`` mask of labels: each output pixel gets the label that covers most of
    its area (Taught in notebook 01). Returns int32 ``size``.

    The votes are an area resize of the one-hot mask, so they are centred on the output pixel
    like the antialiased image (``method="nearest"`` downsampling by 2 takes source pixel
    ``2i + 1``, half a source pixel off). A tie goes to the label with more weight in the
    wider, centred bilinear footprint, then to the lowest label. Only labels found in the mask
    can come out: none is invented, ``ignore_index`` included.
    """
    flat = tf.reshape(tf.cast(mask, tf.int32), [-1])
    labels = tf.sort(tf.unique(flat).y)  # the labels present, ascending
    one_hot = tf.one_hot(tf.reshape(tf.searchsorted(labels, flat), tf.shape(mask)), tf.size(labels))
    area = tf.image.resize(one_hot, size, method="area")
    footprint = tf.image.resize(one_hot, size, method="bilinear", antialias=True)
    return tf.gather(labels, tf.argmax(area + 1e-3 * footprint, axis=-1, output_type=tf.int32))


def augment_pair(
    image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, max_zoom: float = 0.25
) -> tuple[tf.Tensor, tf.Tensor]:
    """The same random flip and zoom-crop for image and mask; brightness/contrast image only.

    ``seed`` is a shape-(2,) int tensor: the augmentation is a pure function of it, so a run is
    reproducible and image and mask cannot drift apart.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    # Geometry: stack mask onto the image as a 4th channel so both move together.
    stacked = tf.concat([image, tf.cast(mask[..., None], tf.float32)], axis=-1)
    stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[0])
    zoom = tf.random.stateless_uniform([], seeds[1], 1.0 - max_zoom, 1.0)
    crop_height = tf.cast(tf.cast(height, tf.float32) * zoom, tf.int32)
    crop_width = tf.cast(tf.cast(width, tf.float32) * zoom, tf.int32)
    stacked = tf.image.stateless_random_crop(stacked, [crop_height, crop_width, 4], seeds[2])
    image = tf.image.resize(stacked[..., :3], [height, width], method="bilinear")
    mask = resize_mask(stacked[..., 3], [height, width])
    # Photometry: the image only, labels do not change with lighting.
    image = tf.image.stateless_random_brightness(image, 0.15, seeds[3])
    image = tf.image.stateless_random_contrast(image, 0.8, 1.2, seeds[4])
    return tf.clip_by_value(image, 0.0, 1.0), mask


def checked_class_weights(class_weights: Sequence[float], num_classes: int | None) -> np.ndarray:
    """``class_weights`` as float32, refused unless finite, >= 0 and exactly one per class (a
    missing weight would silently weigh its class 0, an extra one would be ignored)."""
    if num_classes is None:
        raise ValueError(
            "make_pipeline(class_weights=...) needs num_classes=... (dataset.classes.num_classes) "
            "to check that there is exactly one weight per class."
        )
    weights = np.asarray(class_weights, dtype=np.float32)
    if weights.shape != (num_classes,):
        raise ValueError(
            f"class_weights has {weights.size} value(s) but the dataset has {num_classes} classes: "
            "give exactly one weight per class, in class-id order."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"class_weights must be finite and >= 0, not {weights.tolist()}.")
    return weights


def make_pipeline(
    split: Sequence[Pair],
    image_size: int | tuple[int, int] = 64,
    batch_size: int = 16,
    *,
    augment: bool = False,
    max_zoom: float = 0.25,
    cache: bool = True,
    shuffle: bool = False,
    seed: int = 0,
    prefetch: bool = True,
    class_weights: Sequence[float] | None = None,
    num_classes: int | None = None,
    repeat: int = 1,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(image float32 [B, H, W, 3] in [0, 1], mask int32 [B, H, W])``.

    ``split`` is a list of pairs from ``Dataset.split(...)``. Decoding runs in parallel;
    ``cache`` keeps decoded, resized pairs in memory (before augmentation); ``shuffle`` and
    ``augment`` (flips, lighting and, up to ``max_zoom``, zoom-crops) are seeded by ``seed``.
    With ``class_weights`` (exactly one per class: pass ``num_classes`` too) each element gains
    a third tensor, the per-pixel sample weight ``class_weights[mask]`` (0 on pixels whose label
    is not a class, such as ``ignore_index``), which Keras' ``fit`` applies to the loss.
    ``repeat`` passes over the pairs make one epoch (a small training split, notebook 01).
    """
    if not split:
        raise ValueError("make_pipeline got an empty split: there is nothing to load.")
    if class_weights is not None:
        class_weights = checked_class_weights(class_weights, num_classes)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    paths = tf.data.Dataset.from_tensor_slices(
        ([str(pair.image) for pair in split], [str(pair.mask) for pair in split])
    )
    dataset = paths.map(
        lambda image, mask: decode_pair(image, mask, size), num_parallel_calls=AUTOTUNE
    )
    if cache:
        dataset = dataset.cache()
    if repeat > 1:  # before shuffle and augmentation: each pass is mixed and augmented anew
        dataset = dataset.repeat(repeat)
    if shuffle:
        dataset = dataset.shuffle(len(split) * repeat, seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda pair, pair_seed: augment_pair(*pair, pair_seed, max_zoom),
            num_parallel_calls=AUTOTUNE,
        )
    if class_weights is not None:
        lookup = tf.concat([tf.constant(class_weights, tf.float32), tf.zeros([256])], axis=0)
        dataset = dataset.map(
            lambda image, mask: (image, mask, tf.gather(lookup, mask)),
            num_parallel_calls=AUTOTUNE,
        )
    dataset = dataset.batch(batch_size)
    return dataset.prefetch(AUTOTUNE) if prefetch else dataset
