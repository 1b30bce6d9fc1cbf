"""helpers.training never loses a run (issue 12): atomic checkpoints and saves, runs kept apart
per dataset and configuration, damaged files named, bad configurations refused up front."""

from __future__ import annotations

import dataclasses
import errno
import json
import zipfile
from pathlib import Path

import keras
import pytest

from helpers import data, models, training

TINY = training.TrainConfig(  # min_steps=0: exactly `epochs` passes (the tests count epochs)
    image_size=16,
    batch_size=4,
    epochs=1,
    learning_rate=1e-2,
    base_filters=2,
    patience=5,
    min_steps=0,
)


def said(capsys: pytest.CaptureFixture) -> str:
    """What was printed, less train()'s trivial-model warning: a model trained for an epoch or
    two on a few 16x16 images predicts one class, and these tests are about other lines."""
    lines = capsys.readouterr().out.splitlines(keepends=True)
    warning = [i for i, line in enumerate(lines) if line.startswith("Warning: the trained model")]
    for start in reversed(warning):
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("Likely causes"))
        del lines[start : end + 1]
    return "".join(lines)


@pytest.fixture
def dataset(make_dataset):
    return data.load_dataset(make_dataset(pairs=4))


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """``artifacts/`` in a temporary folder."""
    folder = tmp_path / "artifacts"
    monkeypatch.setattr(training, "ARTIFACTS_DIR", folder)
    return folder


def kill_during_save(monkeypatch):
    """Every ``model.save`` writes the start of an archive, then dies."""

    def broken_save(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04" + bytes(100))
        raise OSError("killed during the save")

    monkeypatch.setattr(keras.Model, "save", broken_save)


def refuse_to_read(dataset, monkeypatch):
    """Reading the dataset's files fails: what a test calls must refuse before that."""

    def no_reading(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(type(dataset), "split", no_reading)


def test_a_kill_during_the_checkpoint_save_leaves_the_previous_checkpoint(
    dataset, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    training.train(dataset, TINY, run_dir=run_dir, verbose=0)
    checkpoint = run_dir / "checkpoint.keras"
    saved = checkpoint.read_bytes()
    kill_during_save(monkeypatch)
    longer = dataclasses.replace(TINY, epochs=2)
    with pytest.raises(OSError, match="killed during the save"):
        training.train(dataset, longer, run_dir=run_dir, resume=True, verbose=0)
    assert checkpoint.read_bytes() == saved
    assert sorted(path.name for path in run_dir.glob("*.keras")) == ["checkpoint.keras"]
    assert training.completed_epochs(run_dir) == 1, "the log counts only checkpointed epochs"
    monkeypatch.undo()
    assert training.load_model_file(checkpoint).output_shape == (None, 16, 16, 3)


@pytest.mark.slow  # over 10 s: make verify
def test_a_fresh_run_sets_the_earlier_run_aside_instead_of_deleting_it(
    dataset, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    training.train(dataset, TINY, run_dir=run_dir, verbose=0)
    earlier = {name: (run_dir / name).read_bytes() for name in ("checkpoint.keras", "history.csv")}
    refuse_to_read(dataset, monkeypatch)  # a fresh run that fails before training
    with pytest.raises(AssertionError, match="the data was read"):
        training.train(dataset, TINY, run_dir=run_dir, verbose=0)
    assert (run_dir / "checkpoint.keras").read_bytes() == earlier["checkpoint.keras"]
    monkeypatch.undo()

    class Crash(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise RuntimeError("crash in the first epoch")

    with pytest.raises(RuntimeError, match="crash in the first epoch"):
        training.train(dataset, TINY, run_dir=run_dir, callbacks=[Crash()], verbose=0)
    (aside,) = (run_dir / "earlier").iterdir()
    assert {name: (aside / name).read_bytes() for name in earlier} == earlier
    assert json.loads((aside / "run.json").read_text()) == dataclasses.asdict(TINY)
    training.train(dataset, TINY, run_dir=run_dir, verbose=0)
    assert training.completed_epochs(run_dir) == 1 and (run_dir / "checkpoint.keras").is_file()
    assert len(list((run_dir / "earlier").iterdir())) == 2, "the crashed run's log is kept too"


def test_runs_and_models_are_kept_apart_per_dataset_and_configuration(artifacts, make_dataset):
    key = training.config_id(TINY)
    assert key == training.config_id(training.TrainConfig(**dataclasses.asdict(TINY)))
    assert key.startswith("16px-1ep-") and len(key) == len("16px-1ep-") + 8
    others = {training.config_id(dataclasses.replace(TINY, **{f: v})) for f, v in CHANGES}
    assert key not in others and len(others) == len(CHANGES)
    shapes = data.load_dataset("shapes")  # a folder directly under data/: keyed by its name
    run = training.run_id(TINY)
    assert training.default_run_dir(shapes, TINY) == artifacts / "shapes" / f"unet-{run}"
    assert training.default_run_dir(shapes, TINY, "fcn") == artifacts / "shapes" / f"fcn-{run}"
    assert training.model_path(shapes, TINY) == artifacts / "shapes" / f"unet-{key}.keras"
    assert training.model_path(shapes, TINY, "fcn") == artifacts / "shapes" / f"fcn-{key}.keras"
    # a run resumed with more epochs or patience finds its folder; other fields do not
    longer = dataclasses.replace(TINY, epochs=9, patience=2)
    assert training.default_run_dir(shapes, longer) == training.default_run_dir(shapes, TINY)
    assert training.model_path(shapes, longer) != training.model_path(shapes, TINY)
    other = dataclasses.replace(TINY, seed=1)
    assert training.default_run_dir(shapes, other) != training.default_run_dir(shapes, TINY)


def test_two_datasets_of_the_same_name_never_share_a_run_or_a_model(artifacts, make_dataset):
    first = data.load_dataset(make_dataset(name="one/mydata"))
    second = data.load_dataset(make_dataset(name="two/mydata"))
    assert first.name == second.name == "mydata"
    assert training.dataset_key(first).startswith("mydata-")
    assert training.dataset_key(first) != training.dataset_key(second)
    assert training.model_path(first, TINY) != training.model_path(second, TINY)
    assert training.default_run_dir(first, TINY) != training.default_run_dir(second, TINY)
    again = data.load_dataset(first.root / ".." / "mydata")  # the same folder, another spelling
    assert training.model_path(again, TINY) == training.model_path(first, TINY)


CHANGES = [("epochs", 3), ("learning_rate", 1e-3), ("seed", 1), ("loss", "dice")]


def test_load_or_train_uses_the_configurations_model_and_says_how_it_was_trained(
    dataset, artifacts, capsys
):
    path = training.model_path(dataset, TINY)
    training.load_or_train(dataset, TINY)
    (line,) = said(capsys).splitlines()
    assert line == f"No trained model at {path}: training one now with the shared recipe " + (
        "(1 epoch at 16x16)."
    )
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["config"] == dataclasses.asdict(TINY) and record["epochs_run"] == 1
    assert (training.default_run_dir(dataset, TINY) / "checkpoint.keras").is_file()
    saved = path.read_bytes()
    training.load_or_train(dataset, TINY)
    (line,) = said(capsys).splitlines()
    best = record["best_val_mean_iou"]
    assert line == f"Loaded the trained model from {path} (trained 1 epoch, " + (
        f"best validation mean IoU {best:.3f})."
    )
    short = dataclasses.replace(TINY, decay_fraction=0.0)  # a reader's non-default run
    training.load_or_train(dataset, short)
    assert "No trained model" in capsys.readouterr().out
    assert path.read_bytes() == saved, "another configuration never replaces this model"
    assert training.model_path(dataset, short).is_file()
    assert record["classes"] == list(dataset.classes.names)
    assert record["dataset"] == str(dataset.root.resolve())


def test_load_or_train_never_returns_a_model_of_other_classes_or_size(dataset, tmp_path, capsys):
    path = tmp_path / "unet.keras"
    wrong_size = models.unet(dataset.classes.num_classes, 32, depth=1, base_filters=2)
    training.save_trained(wrong_size, path, TINY, {}, dataset)
    training.load_or_train(dataset, TINY, path=path)
    printed = said(capsys)
    assert f"The model at {path} is not this dataset's: it was trained on 32x32" in printed
    (aside,) = path.parent.glob("unet.keras.other-*")
    assert aside.read_bytes()[:2] == b"PK", "kept, never deleted"
    assert len(list(path.parent.glob("unet.json.other-*"))) == 1
    four = models.unet(dataset.classes.num_classes + 1, 16, depth=1, base_filters=2)
    training.save_trained(four, path, TINY, {})
    training.load_or_train(dataset, TINY, path=path)
    assert f"it has {dataset.classes.num_classes + 1} classes, not" in said(capsys)
    renamed = dataclasses.replace(dataset.classes, names=("a", "b", "c"))
    training.save_trained(training.load_model_file(path), path, TINY, {}, dataset)
    training.load_or_train(dataclasses.replace(dataset, classes=renamed), TINY, path=path)
    assert "its classes are ['background'" in said(capsys)
    assert training.load_model_file(path).output_shape[-1] == dataset.classes.num_classes


def test_a_folder_at_the_model_path_is_refused_before_training(dataset, tmp_path, monkeypatch):
    (tmp_path / "unet.keras").mkdir()
    refuse_to_read(dataset, monkeypatch)
    with pytest.raises(ValueError, match="is a folder, not a model file: nothing was trained"):
        training.load_or_train(dataset, TINY, path=tmp_path / "unet.keras")


def test_save_trained_is_atomic_and_writes_how_the_model_was_trained(tmp_path, monkeypatch):
    model = models.unet(3, 16, depth=1, base_filters=2)
    path = tmp_path / "models" / "unet.keras"
    history = {"loss": [1.0, 0.5, 0.4], "val_mean_iou": [0.2, 0.6, 0.5]}
    training.save_trained(model, path, TINY, history)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["epochs_run"] == 3 and record["best_val_mean_iou"] == 0.6
    assert record["config"] == dataclasses.asdict(TINY)
    assert record["config_id"] == training.config_id(TINY) and record["saved"][:2] == "20"
    assert training.how_trained(path) == "trained 3 epochs, best validation mean IoU 0.600"
    saved = path.read_bytes()
    kill_during_save(monkeypatch)
    with pytest.raises(OSError, match="killed"):
        training.save_trained(model, path, TINY, {"loss": [1.0]})
    assert path.read_bytes() == saved and sorted(p.name for p in path.parent.iterdir()) == [
        "unet.json",
        "unet.keras",
    ]
    monkeypatch.undo()
    training.save_trained(model, path, TINY, {"loss": [1.0]})  # no validation: still recorded
    assert training.how_trained(path) == "trained 1 epoch, no validation score"
    path.with_suffix(".json").write_text("{")
    assert training.how_trained(path) == "no record of how it was trained"


def test_a_damaged_model_file_is_named_kept_aside_and_retrained(dataset, tmp_path, capsys):
    path = tmp_path / "artifacts" / "unet_shapes.keras"
    training.save_trained(models.unet(3, 16, depth=1, base_filters=2), path, TINY, {})
    damaged = path.read_bytes()[:300]  # a file cut short, as a kill during a save left it
    path.write_bytes(damaged)
    with pytest.raises(training.DamagedModelError, match=r"unet_shapes.keras is damaged"):
        training.load_model_file(path)
    model = training.load_or_train(dataset, TINY, path=path)
    (line,) = said(capsys).splitlines()
    assert f"The model file {path} is damaged" in line and "training a new one now" in line
    (aside,) = path.parent.glob("unet_shapes.keras.damaged-*")
    assert aside.read_bytes() == damaged and line.count(aside.name) == 1
    assert training.load_model_file(path).count_params() == model.count_params()


def test_resuming_from_a_damaged_checkpoint_says_so_and_how_to_go_on(
    dataset, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.keras").write_bytes(b"")  # what ModelCheckpoint left after a kill
    refuse_to_read(dataset, monkeypatch)
    with pytest.raises(training.DamagedModelError, match=r"damaged .*resume=False"):
        training.train(dataset, TINY, run_dir=run_dir, resume=True, verbose=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1, not 0"),
        ({"epochs": 0}, "epochs must be at least 1, not 0"),
        ({"learning_rate": 0.0}, "learning_rate must be greater than 0, not 0.0"),
        ({"learning_rate": float("nan")}, "learning_rate must be greater than 0"),
        ({"decay_fraction": 1.0}, r"decay_fraction must be in \[0, 1\)"),
        ({"decay_fraction": -0.1}, r"decay_fraction must be in \[0, 1\)"),
        ({"image_size": 100}, r"multiple of 8 for this U-Net \(3 poolings\): 100 -> use 96 or 104"),
        ({"image_size": 4}, r"multiple of 8 .*: 4 -> use 8\.$"),
        ({"image_size": 0}, r"multiple of 8 .*: 0 -> use 8"),
    ],
)
def test_bad_configurations_are_refused_before_any_data_is_read(
    change, message, dataset, monkeypatch
):
    config = dataclasses.replace(TINY, **change)
    with pytest.raises(ValueError, match=message):
        training.check_config(config)
    refuse_to_read(dataset, monkeypatch)
    with pytest.raises(ValueError, match=message):
        training.train(dataset, config, verbose=0)
    with pytest.raises(ValueError, match=message):
        training.resolve_config(**change)


def test_all_problems_of_a_configuration_are_named_at_once():
    config = training.TrainConfig(batch_size=0, epochs=0, image_size=30)
    with pytest.raises(ValueError, match=r"batch_size .*; epochs .*; image_size .*-> use 24 or 32"):
        training.check_config(config)


def test_models_refuse_an_image_size_their_poolings_cannot_take():
    with pytest.raises(ValueError, match=r"multiple of 8 for this U-Net .*: 100 -> use 96 or 104"):
        models.unet(3, image_size=100)
    with pytest.raises(ValueError, match=r"multiple of 2 for this U-Net \(1 pooling\): 15 -> "):
        models.unet(3, image_size=15, depth=1)
    with pytest.raises(ValueError, match="multiple of 8 for this FCN"):
        models.fcn(3, image_size=36)
    assert models.image_size_problem(None) is None and models.image_size_problem(24) is None
    assert models.unet(3, image_size=12, depth=2, base_filters=2).output_shape == (None, 12, 12, 3)


@pytest.mark.slow  # over 10 s: make verify
def test_resume_refuses_a_checkpoint_that_is_not_the_run_asked_for(
    dataset, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    training.train(dataset, TINY, run_dir=run_dir, verbose=0)
    two_classes = data.Classes(names=("a", "b"), colors=((0, 0, 0), (1, 1, 1)))
    refused = {
        "it was trained on 16x16 images, not 24": (dataset, {"image_size": 24}, None),
        "it has 3 classes, not 2": (dataclasses.replace(dataset, classes=two_classes), {}, None),
        "it was trained with seed=42, not 7": (dataset, {"seed": 7}, None),
        r"it holds a unet of [\d,]+ weights, but the given model is a fcn of [\d,]+ "
        r"\(pass model=None to continue the checkpoint's model\)": (dataset, {}, models.fcn(3, 16)),
    }
    refuse_to_read(dataset, monkeypatch)
    for message, (source, change, model) in refused.items():
        config = dataclasses.replace(TINY, **change)
        expected = f"Cannot resume from .*checkpoint.keras: {message}\\. Resume "
        with pytest.raises(ValueError, match=expected):
            training.train(source, config, model=model, run_dir=run_dir, resume=True, verbose=0)
    monkeypatch.undo()
    longer = dataclasses.replace(TINY, epochs=2, patience=9)  # what a resumed run may change
    same = models.unet(3, 16, base_filters=2)
    model, history = training.train(
        dataset, longer, model=same, run_dir=run_dir, resume=True, verbose=0
    )
    assert said(capsys) == "Resuming from checkpoint.keras after epoch 1.\n"
    assert len(history["loss"]) == 1 and training.completed_epochs(run_dir) == 2


def test_resume_without_a_checkpoint_says_it_starts_afresh(dataset, tmp_path, monkeypatch, capsys):
    refuse_to_read(dataset, monkeypatch)
    with pytest.raises(AssertionError, match="the data was read"):
        training.train(dataset, TINY, run_dir=tmp_path / "none", resume=True, verbose=0)
    expected = f"Nothing to resume in {tmp_path / 'none'}: starting a fresh run.\n"
    assert said(capsys) == expected


def test_a_full_disk_or_file_size_limit_is_said_plainly_and_keeps_the_last_file(tmp_path):
    path = tmp_path / "unet.keras"
    path.write_bytes(b"the last good model")

    def too_large(partial):
        partial.write_bytes(b"part")
        raise OSError(errno.EFBIG, "File too large")

    kept = r"Could not write .*unet.keras: File too large .*ulimit -f.*previous file is kept"
    with pytest.raises(OSError, match=kept):
        training._replace_atomically(path, too_large)
    assert path.read_bytes() == b"the last good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet.keras"]


def test_a_resume_with_more_epochs_finds_its_run_under_the_default_folder(
    dataset, artifacts, capsys
):
    """Issue 37: epochs are changeable on resume, but the default run folder's name held them,
    so a longer resumed run silently started afresh."""
    training.train(dataset, TINY, verbose=0)
    longer = dataclasses.replace(TINY, epochs=2)
    _, history = training.train(dataset, longer, resume=True, verbose=0)
    assert "Resuming from checkpoint.keras after epoch 1." in said(capsys)
    assert len(history["loss"]) == 1
    assert training.completed_epochs(training.default_run_dir(dataset, longer)) == 2


def test_a_model_archive_keras_cannot_load_is_damaged_and_kept_aside(dataset, tmp_path, capsys):
    """A valid zip whose config is broken raised Keras' own error and stayed in place."""
    path = tmp_path / "unet.keras"
    training.save_trained(models.unet(3, 16, depth=1, base_filters=2), path, TINY, {})
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["config.json"] = b'{"class_name": "NoSuchLayer", "config": {}}'
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    broken = path.read_bytes()
    with pytest.raises(training.DamagedModelError, match="Keras cannot load it"):
        training.load_model_file(path)
    training.load_or_train(dataset, TINY, path=path)
    assert "training a new one now" in said(capsys)
    (aside,) = tmp_path.glob("unet.keras.damaged-*")
    assert aside.read_bytes() == broken
