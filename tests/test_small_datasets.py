"""Issue 18: a reader's own small dataset trains for enough steps, splits so that it can be
measured, and a trivial model is never returned without a word. shapes is unchanged."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import data, metrics, pipeline, training
from helpers.layout import DatasetError, Pair
from tests.conftest import CLASSES_JSON, write_pair

# --- the budget ----------------------------------------------------------------------------------


def test_shapes_runs_are_exactly_as_before():
    """480 training pairs: every run the notebooks train on shapes keeps its length, its
    schedule at every step, its id and its printed configuration."""
    cpu = training.CPU_CONFIG
    assert (cpu.epochs, cpu.patience, cpu.batch_size, cpu.decay_fraction) == (60, 15, 8, 0.4)
    # early stopping judges from the decay's first epoch (36) on: a run never ends before it
    assert training.run_length(cpu, 480) == training.RunLength(60, 60, 1, stop_from=36)
    # on a GPU (batch 32) shapes fills 15 batches, under SMALL_SPLIT_BATCHES: two passes an epoch
    assert training.run_length(training.GPU_CONFIG, 480) == training.RunLength(40, 30, 2, 34)
    fcn = dataclasses.replace(cpu, epochs=8)  # notebooks 03 and 04: 480 steps
    assert training.run_length(fcn, 480) == training.RunLength(8, 60, 1, stop_from=8)
    assert training.run_length(dataclasses.replace(cpu, epochs=15), 480).total_steps == 900
    assert training.run_length_note(cpu, 480) is None
    schedule = training.learning_rate_for(cpu, 480)
    assert schedule.total_steps == 3600 and schedule.decay_fraction == 0.4
    steps = [0, 1, 1000, 2159, 2160, 2161, 2500, 3000, 3599, 3600, 5000]
    # ConstantThenLinearDecay(0.003, 3600 steps, 0.4): flat to step 2160, then linear to 1e-5
    expected = [0.003] * 5 + [0.0029979236, 0.0022940279, 0.0012558333, 1.2076416e-05, 1e-05, 1e-05]
    rates = [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert training.config_id(cpu) == "64px-60ep-2c1cfcc2"  # notebook 03's saved model
    assert "min_steps" not in repr(cpu)


@pytest.mark.parametrize("pairs", range(8, 200, 3))
def test_no_split_size_trains_fewer_than_min_steps_at_the_default_epochs(pairs):
    """No cliff: 72 pairs (9 batches) were lengthened to 1,080 steps, 73-80 pairs ran 600."""
    assert training.run_length(training.CPU_CONFIG, pairs).total_steps >= training.MIN_STEPS


def test_a_small_split_trains_at_least_min_steps():
    config = training.TrainConfig()
    length = training.run_length(config, 8)  # 1 batch per pass
    assert length == training.RunLength(epochs=60, steps_per_epoch=17, passes=17, stop_from=59)
    assert length.total_steps == 1020 >= training.MIN_STEPS
    assert training.learning_rate_for(config, 8).total_steps == 1020
    assert training.run_length(config, 13).total_steps >= training.MIN_STEPS  # 2 batches per pass
    note = training.run_length_note(config, 8)
    assert "60 epochs of 17 steps = 1,020 steps" in note and "repeats the pairs 17 times" in note
    assert "early stopping waits for the decay" in note
    # issue 37's 15 pairs: judged from the epoch that reaches min_steps, patience 15 ends nothing
    fifteen = training.run_length(config, 15)
    assert fifteen.total_steps >= 1000 and fifteen.stop_from + config.patience >= config.epochs
    exact = dataclasses.replace(config, min_steps=0)
    assert training.run_length(exact, 8) == training.RunLength(60, 1, 1, stop_from=36)
    assert training.config_id(exact) != training.config_id(config)
    with pytest.raises(ValueError, match="min_steps must be 0 or more"):
        training.check_config(dataclasses.replace(config, min_steps=-1))


def test_a_repeated_pipeline_passes_several_times_per_epoch(tmp_path):
    for index in range(3):
        write_pair(tmp_path, f"p{index}")
    pairs = [
        Pair(tmp_path / "images" / f"p{i}.png", tmp_path / "masks" / f"p{i}.png") for i in range(3)
    ]
    batches = pipeline.make_pipeline(pairs, 16, 4, repeat=4, shuffle=True, augment=True)
    assert sum(int(images.shape[0]) for images, _ in batches) == 12


# --- the trivial-model warning -------------------------------------------------------------------

TWO_CLASSES = data.Classes(("background", "vessel"), ((0, 0, 0), (255, 0, 0)))
SHAPES_CLASSES = data.Classes(
    ("background", "circle", "square", "triangle", "star"), ((0, 0, 0),) * 5
)


def test_an_all_background_model_is_named_with_causes_and_fixes():
    confusion = np.array([[9000, 0], [700, 3]])  # vessel predicted on 3 of 703 pixels
    config = training.CPU_CONFIG
    warning = training.trivial_model_warning(confusion, TWO_CLASSES, config, kept_epoch=(2, 0.46))
    assert warning.startswith("Warning: the trained model predicts 'background' on 100.0%")
    assert "never vessel" in warning and "epoch 2" in warning and "0.460" in warning
    assert "learned the majority class" in warning
    for fix in ("epochs=120", "min_steps=2,000", "image_size, e.g. 128", "class_pixel_counts"):
        assert fix in warning
    assert training.missed_classes(confusion) == [1]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"loss": "cross_entropy"},
        {"loss": "dice"},
        {"loss": "cross_entropy", "class_weight_power": 0.5},
    ],
)
def test_every_fix_the_warning_offers_changes_the_configuration(changes):
    """Each offered `field=value` differs from the configuration the warning is printed for,
    and the fields a fix names, applied together, make a configuration the recipe trains."""
    config = dataclasses.replace(training.CPU_CONFIG, **changes)
    fixes = training.trivial_model_fixes(config)
    fields = set()
    for fix in fixes:
        offered = {
            field: ast.literal_eval(value.replace(",", ""))
            for field, value in re.findall(r"(\w+)=('[\w]+'|[\d.,]*\d)", fix)
        }
        fields |= offered.keys()
        for field, value in offered.items():
            assert getattr(config, field) != value, (field, value, fix)
        if offered.keys() != {"epochs", "min_steps"}:  # the alternatives of one fix
            training.check_config(dataclasses.replace(config, **offered))
    assert fields >= {"epochs", "min_steps", "loss"} - ({"loss"} if not changes else set())


def test_a_model_that_predicts_the_minority_class_everywhere_is_not_called_the_majority():
    confusion = np.array([[0, 9000], [0, 700]])  # vessel everywhere
    warning = training.trivial_model_warning(confusion, TWO_CLASSES, training.CPU_CONFIG)
    assert "predicts 'vessel' on 100.0%" in warning and "learned one class everywhere" in warning


def test_a_good_model_or_a_rare_miss_on_a_large_split_prints_nothing():
    # notebook 04's confusion of the shapes U-Net (recall 92-99 % of every class): no warning
    recall = np.array([0.997, 0.955, 0.957, 0.946, 0.927])
    pixels = np.array([304_593, 39_516, 23_473, 22_152, 3_482])
    good = np.diag((recall * pixels).astype(int)) + 10
    assert training.trivial_model_warning(good, SHAPES_CLASSES, training.CPU_CONFIG) is None
    # notebook 06's plain cross-entropy never predicts the star: a lesson, not a trivial model
    no_star = good.copy()
    no_star[4] = [3482, 0, 0, 0, 0]
    no_star[:, 4] = 0
    no_star[4, 0] = 3482
    assert training.trivial_model_warning(no_star, SHAPES_CLASSES, training.CPU_CONFIG) is None
    small = training.trivial_model_warning(
        no_star, SHAPES_CLASSES, training.CPU_CONFIG, small_split=True
    )
    assert small.startswith("Warning: the trained model (almost) never predicts star")


def test_train_warns_when_early_stopping_kept_a_trivial_model(tmp_path, capsys):
    """A stub that always says background: train() names it and the epoch that was kept."""
    root = _thin_lines(tmp_path / "thin", {"train": 4, "val": 2, "test": 1}, size=16)
    stub = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 1)], name="stub")
    stub.layers[0].set_weights([np.zeros((1, 1, 3, 2)), np.array([5.0, -5.0])])
    config = training.TrainConfig(
        image_size=16, batch_size=4, epochs=5, patience=1, min_steps=0, decay_fraction=0.8
    )
    assert training.run_length(config, 4).stop_from == 1  # the decay starts after epoch 1
    training.train(data.load_dataset(root), config, model=stub, run_dir=tmp_path / "run", verbose=0)
    printed = capsys.readouterr().out
    assert "predicts 'background' on 100.0% of the validation pixels" in printed
    assert "Early stopping kept the weights of epoch 2" in printed
    (line,) = [line for line in printed.splitlines() if line.startswith("Early stopping ended")]
    assert line.startswith("Early stopping ended the run after epoch 3 of 5: validation mean")
    assert "It judged from epoch 2 on; patience=2 waits longer." in line
    config = dataclasses.replace(config, epochs=3, decay_fraction=0.4)  # stops at the last epoch
    training.train(data.load_dataset(root), config, model=stub, run_dir=tmp_path / "run", verbose=0)
    assert "Early stopping ended" not in capsys.readouterr().out


# --- a small thin-structure set, end to end ------------------------------------------------------


def _thin_lines(root: Path, counts: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """Grayscale images of 1-pixel dark lines (class 1, "vessel") on noise, in split folders."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / "classes.json").write_text(
        json.dumps({"names": ["background", "vessel"], "colors": [[0, 0, 0], [255, 0, 0]]})
    )
    for split, count in counts.items():
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for index in range(count):
            mask = Image.new("L", (size, size), 0)
            for _ in range(3):
                ends = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2)]
                ImageDraw.Draw(mask).line(ends, fill=1)
            image = rng.normal(120, 20, (size, size)) - 50 * np.asarray(mask)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                root / split / "images" / f"{index}.png"
            )
            mask.save(root / split / "masks" / f"{index}.png")
    return root


def test_eight_thin_structure_images_learn_the_structure_or_say_why(tmp_path, capsys):
    root = _thin_lines(tmp_path / "thin", {"train": 8, "val": 2, "test": 1})
    dataset = data.load_dataset(root)
    # the recipe at a tiny scale (MIN_STEPS would take minutes on a shared CPU in a test)
    config = training.TrainConfig(image_size=32, base_filters=4, min_steps=240, patience=8)
    model, _ = training.train(dataset, config, run_dir=tmp_path / "run", verbose=0)
    printed = capsys.readouterr().out
    assert printed.count("not RGB") == 1 and "11 image(s) are not RGB" in printed
    assert "60 epochs of 4 steps = 240 steps" in printed
    batches = pipeline.make_pipeline(dataset.split("val"), 32, 8)
    vessel_iou = metrics.iou_per_class(training.confusion_on(model, batches, dataset.classes))[1]
    assert vessel_iou > 0.2 or "Warning: the trained model" in printed, (vessel_iou, printed)


# --- splits of a folder without splits -----------------------------------------------------------


def _flat(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps(CLASSES_JSON))
    for index in range(count):
        write_pair(root, f"photo_{index:02d}", value=1 + index % 2)
    return root


def test_ten_pairs_get_a_validation_and_a_test_pair(tmp_path):
    dataset = data.load_dataset(_flat(tmp_path / "ten", 10))
    sizes = {name: len(dataset.split(name)) for name in data.SPLITS}
    assert sizes == {"train": 8, "val": 1, "test": 1}, sizes  # the asked (0.8, 0.1, 0.1)


@pytest.mark.parametrize("count", [5, 10, 20, 40, 99])
def test_few_pairs_get_the_asked_shares(count):
    pairs = [Pair(Path(f"images/r{count}_{i}.png"), Path(f"m/{i}.png")) for i in range(count)]
    sizes = {name: len(split) for name, split in data._deterministic_split(pairs).items()}
    assert abs(sizes["train"] - 0.8 * count) <= 1, sizes


@pytest.mark.parametrize("count", range(3, 31))
def test_three_pairs_or_more_fill_every_split(count):
    pairs = [Pair(Path(f"images/s{count}_{i}.png"), Path(f"m/{i}.png")) for i in range(count)]
    splits = data._deterministic_split(pairs)
    assert min(len(split) for split in splits.values()) >= 1
    assert sorted(p.image for split in splits.values() for p in split) == sorted(
        p.image for p in pairs
    )


def test_two_pairs_are_too_few_for_a_test_split_and_say_so(tmp_path, capsys):
    dataset = data.load_dataset(_flat(tmp_path / "two", 2))
    assert len(dataset.split("train")) == 1 and len(dataset.split("val")) == 1
    assert "two holds 2 pair(s), too few for a test split" in capsys.readouterr().out
    with pytest.raises(DatasetError, match=r"holds 2 pair\(s\), too few .* add pairs"):
        dataset.split("test")


def test_an_empty_split_gets_the_fix_that_fits_the_layout(tmp_path, make_dataset):
    flat = data.load_dataset(_flat(tmp_path / "flat", 10), split_fractions=(0.9, 0.0))
    with pytest.raises(DatasetError, match=r"leave no share for val.*split_fractions=\(0.6"):
        flat.split("val")
    root = make_dataset()
    for path in (root / "test").rglob("*.png"):
        path.unlink()
    with pytest.raises(DatasetError, match="move every pair into") as error:
        data.load_dataset(root).split("test")
    assert "without splits" not in str(error.value)
