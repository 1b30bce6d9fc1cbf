"""helpers.pipeline: shapes, dtypes, label integrity, joint augmentation, reproducibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import data, pipeline, shapes


@pytest.fixture
def shapes_pairs(tmp_path):
    root = shapes.make_shapes(tmp_path / "shapes", split_sizes={"train": 12}, image_size=40, seed=1)
    return data.load_dataset(root).split("train")


def test_batches_have_the_contracted_shapes_and_ranges(shapes_pairs):
    batches = pipeline.make_pipeline(shapes_pairs, 32, batch_size=5)
    images, masks = next(iter(batches))
    assert images.shape == (5, 32, 32, 3) and images.dtype == tf.float32
    assert masks.shape == (5, 32, 32) and masks.dtype == tf.int32
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0
    assert sum(int(b[0].shape[0]) for b in batches) == 12


def test_resized_masks_hold_only_labels_of_the_source(shapes_pairs):
    for _, masks in pipeline.make_pipeline(shapes_pairs, (24, 30), batch_size=4, augment=True):
        assert masks.shape[1:] == (24, 30)
        assert set(np.unique(masks.numpy())) <= set(range(5)), "no invented labels"
    mask = np.random.default_rng(0).choice([0, 3, 255], size=(17, 23)).astype(np.uint8)
    for size in ((8, 8), (17, 23), (40, 31)):
        resized = pipeline.resize_mask(tf.constant(mask), size).numpy()
        assert resized.shape == size and resized.dtype == np.int32
        assert set(np.unique(resized)) <= {0, 3, 255}


def test_mask_resize_takes_the_majority_label_of_each_block():
    rng = np.random.default_rng(2)
    majority = rng.integers(0, 5, size=(8, 8))
    mask = np.kron(majority, np.ones((2, 2), int))  # 2x2 blocks of one label...
    rows, cols = np.arange(8) * 2 + rng.integers(0, 2, 8), np.arange(8) * 2 + rng.integers(0, 2, 8)
    mask[rows[:, None], cols[None, :]] = 9  # ...with one pixel of each block changed: 3 vs 1
    resized = pipeline.resize_mask(tf.constant(mask), (8, 8)).numpy()
    np.testing.assert_array_equal(resized, majority)


def test_mask_resize_is_centred_where_nearest_is_not():
    # A mask and its mirror image must resize to mirror images; nearest-neighbour
    # downsampling by 2 samples pixel 2i + 1, so it shifts the mask and fails this.
    mask = np.random.default_rng(3).integers(0, 3, size=(32, 32)).astype(np.int32)
    mirrored = mask[:, ::-1].copy()
    resize = lambda m: pipeline.resize_mask(tf.constant(m), (16, 16)).numpy()  # noqa: E731
    np.testing.assert_array_equal(resize(mirrored), resize(mask)[:, ::-1])
    nearest = lambda m: tf.image.resize(m[..., None], (16, 16), "nearest")[..., 0].numpy()  # noqa: E731
    assert not np.array_equal(nearest(mirrored), nearest(mask)[:, ::-1])


def test_mask_resize_breaks_ties_the_same_way_every_time():
    # A straight edge through the middle of each 2x2 block is a 2:2 tie in every block, and
    # the wider footprint ties too: the lower label wins, on both sides of the object.
    mask = np.zeros((8, 12), np.int32)
    mask[:, 3:7] = 4  # columns 3..6: the blocks (2, 3) and (6, 7) are split in half
    resized = pipeline.resize_mask(tf.constant(mask), (4, 6)).numpy()
    np.testing.assert_array_equal(resized, np.tile([0, 0, 4, 0, 0, 0], (4, 1)))


def test_unaugmented_pipeline_matches_the_files(shapes_pairs):
    images, masks = next(iter(pipeline.make_pipeline(shapes_pairs, 40, batch_size=2)))
    original_mask = np.asarray(Image.open(shapes_pairs[0].mask))
    original_image = np.asarray(Image.open(shapes_pairs[0].image)) / 255
    assert np.array_equal(masks[0].numpy(), original_mask)
    assert np.allclose(images[0].numpy(), original_image, atol=1e-6)


def test_without_zoom_the_augmentation_only_mirrors_the_geometry(shapes_pairs):
    originals = [np.asarray(Image.open(pair.mask)) for pair in shapes_pairs]
    batches = pipeline.make_pipeline(shapes_pairs, 40, 12, augment=True, max_zoom=0.0, seed=3)
    mirrored = 0
    for original, mask in zip(originals, next(iter(batches))[1].numpy(), strict=True):
        assert np.array_equal(mask, original) or np.array_equal(mask, original[:, ::-1])
        mirrored += not np.array_equal(mask, original)
    assert 0 < mirrored < len(originals), "about half the pairs are flipped"


def test_grayscale_and_rgba_images_become_rgb(tmp_path):
    from tests.conftest import CLASSES_JSON, write_pair

    root = tmp_path / "mixed"
    root.mkdir()
    (root / "classes.json").write_text(__import__("json").dumps(CLASSES_JSON))
    write_pair(root / "train", "gray")
    write_pair(root / "train", "rgba")
    Image.fromarray(np.full((12, 16), 90, np.uint8)).save(root / "train/images/gray.png")
    Image.new("RGBA", (16, 12), (10, 20, 30, 40)).save(root / "train/images/rgba.png")
    pairs = data.load_dataset(root).split("train")
    images, _ = next(iter(pipeline.make_pipeline(pairs, (12, 16), batch_size=2)))
    assert images.shape == (2, 12, 16, 3)
    assert np.allclose(images[0].numpy(), 90 / 255, atol=1e-6)
    assert np.allclose(images[1].numpy()[0, 0], np.array([10, 20, 30]) / 255, atol=1e-6)


def _red_levels_follow_labels(image: np.ndarray, mask: np.ndarray, where: np.ndarray) -> bool:
    """Brightness/contrast keep the order of red levels: label k is darker than label k+1."""
    red = image[..., 0]
    present = [label for label in range(4) if np.any(where & (mask == label))]
    return all(
        red[where & (mask == low)].max() <= red[where & (mask == high)].min()
        for low, high in itertools.pairwise(present)
    )


def test_flips_move_image_and_mask_together():
    # The image's red channel encodes the label, so any mismatch breaks the order of levels.
    mask = np.random.default_rng(0).integers(0, 4, size=(32, 32)).astype(np.int32)
    image = np.stack([mask / 3, np.zeros_like(mask), np.zeros_like(mask)], -1).astype(np.float32)
    for seed in range(10):
        aug_image, aug_mask = pipeline.augment_pair(
            tf.constant(image), tf.constant(mask), tf.constant([seed, 7]), max_zoom=0.0
        )
        assert aug_mask.dtype == tf.int32 and aug_mask.shape == (32, 32)
        assert _red_levels_follow_labels(
            aug_image.numpy(), aug_mask.numpy(), np.ones((32, 32), bool)
        )


def test_zoom_crops_move_image_and_mask_together():
    blocks = np.random.default_rng(1).integers(0, 4, size=(6, 6))
    mask = np.kron(blocks, np.ones((8, 8), int)).astype(np.int32)  # 48x48, 8-pixel blocks
    image = np.stack([mask / 3, np.zeros_like(mask), np.zeros_like(mask)], -1).astype(np.float32)
    flipped_or_zoomed = 0
    for seed in range(10):
        aug_image, aug_mask = pipeline.augment_pair(
            tf.constant(image), tf.constant(mask), tf.constant([seed, 3])
        )
        aug_mask = aug_mask.numpy()
        flipped_or_zoomed += not np.array_equal(aug_mask, mask)
        # Interior pixels (same label in their 3x3 neighbourhood) are free of interpolation.
        padded = np.pad(aug_mask, 1, mode="edge")
        shifted = [
            padded[1 + dy : 49 + dy, 1 + dx : 49 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        interior = np.all([s == aug_mask for s in shifted], axis=0)
        assert _red_levels_follow_labels(aug_image.numpy(), aug_mask, interior)
    assert flipped_or_zoomed >= 8, "the augmentation must actually change the geometry"


def test_augmentation_is_reproducible_and_varies_between_epochs(shapes_pairs):
    def first_batch(batches):
        return next(iter(batches))[0].numpy()

    make = lambda: pipeline.make_pipeline(  # noqa: E731
        shapes_pairs, 32, 4, augment=True, shuffle=True, seed=5
    )
    batches = make()
    epoch_1, epoch_2 = first_batch(batches), first_batch(batches)
    assert not np.array_equal(epoch_1, epoch_2), "cache before augmentation: epochs differ"
    assert np.array_equal(epoch_1, first_batch(make())), "same seed, same batches"


def test_empty_split_is_refused():
    with pytest.raises(ValueError, match="empty split"):
        pipeline.make_pipeline([], 32, 4)


def test_without_cache_or_prefetch(shapes_pairs):
    batches = pipeline.make_pipeline(shapes_pairs, 16, 6, cache=False, prefetch=False)
    assert [int(images.shape[0]) for images, _ in batches] == [6, 6]


@pytest.mark.parametrize(
    ("weights", "num_classes", "message"),
    [
        ([1.0, 2.0, 3.0], 5, "3 value.*5 classes"),  # too few: two classes would weigh 0
        ([1.0] * 6, 5, "6 value.*5 classes"),  # too many: one would be ignored
        ([1.0, -1.0, 1.0, 1.0, 1.0], 5, "finite and >= 0"),
        ([1.0, float("nan"), 1.0, 1.0, 1.0], 5, "finite and >= 0"),
        ([1.0] * 5, None, "needs num_classes"),
    ],
)
def test_class_weights_must_be_one_per_class(shapes_pairs, weights, num_classes, message):
    with pytest.raises(ValueError, match=message):
        pipeline.make_pipeline(shapes_pairs, 16, 4, class_weights=weights, num_classes=num_classes)


def test_a_mask_that_is_not_one_channel_fails_with_its_file_wherever_it_enters(shapes_pairs):
    # Pairs given straight to make_pipeline skip Dataset.split's checks; the pipeline still
    # refuses an RGB mask instead of reading it as grey values.
    rgb = np.stack([np.asarray(Image.open(shapes_pairs[0].mask))] * 3, axis=-1)
    Image.fromarray(rgb).save(shapes_pairs[0].mask)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)convert_mask.*train_00000"):
        next(iter(pipeline.make_pipeline(shapes_pairs[:2], 16, 2)))
