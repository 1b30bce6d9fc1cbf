"""helpers.models and helpers.training: shapes, the 1x1-conv/dense equivalence, the recipe."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from notebook_cells import cell_starting, run
from PIL import Image

from helpers import data, losses, models, pipeline, runtime, shapes, training


@pytest.mark.parametrize(("size", "num_classes"), [(32, 2), (64, 5), (48, 30)])
def test_segmentation_models_output_per_pixel_logits(size, num_classes):
    images = np.zeros((2, size, size, 3), np.float32)
    for model in (models.fcn(num_classes), models.unet(num_classes, depth=3)):
        logits = model(images)
        assert tuple(logits.shape) == (2, size, size, num_classes)
        assert logits.dtype == "float32"


def test_unet_without_skips_has_fewer_parameters_and_same_output():
    with_skips, without = models.unet(4, 32), models.unet(4, 32, skip_connections=False)
    assert without.count_params() < with_skips.count_params()
    assert tuple(without(np.zeros((1, 32, 32, 3), np.float32)).shape) == (1, 32, 32, 4)


def test_classifier_has_no_spatial_axes_and_most_weights_after_flatten():
    model = models.seed_classifier(num_classes=5)
    assert tuple(model(np.zeros((3, 224, 224, 3), np.float32)).shape) == (3, 5)
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    assert dense.count_params() / model.count_params() > 0.95


def test_one_by_one_convolution_is_a_dense_layer_at_every_pixel():
    features = np.random.default_rng(0).normal(size=(2, 5, 7, 6)).astype(np.float32)
    conv = keras.layers.Conv2D(3, 1)
    conv_out = conv(features)
    dense = keras.layers.Dense(3)
    dense.build((None, 6))
    kernel, bias = conv.get_weights()
    dense.set_weights([kernel[0, 0], bias])
    dense_out = dense(features.reshape(-1, 6)).numpy().reshape(2, 5, 7, 3)
    np.testing.assert_allclose(conv_out, dense_out, atol=1e-5)


def test_logits_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.unet(3, 32)
        assert model.get_layer("logits").compute_dtype == "float32"
        assert model.get_layer("down1_conv1").compute_dtype == "float16"
        assert model(np.zeros((1, 32, 32, 3), np.float32)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_loss_ignores_ignore_index_pixels():
    model = compile_tiny(models.unet(3, 16, depth=1, base_filters=4), ignore_index=255)
    labels = np.array([[[0, 1], [2, 255]]])
    logits = np.random.default_rng(0).normal(size=(1, 2, 2, 3)).astype(np.float32)
    per_pixel = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(
        np.where(labels == 255, 0, labels), logits
    ).numpy()
    expected = per_pixel[0][[0, 0, 1], [0, 1, 0]].mean()  # mean over the 3 labelled pixels
    assert float(model.loss(labels, logits)) == pytest.approx(expected, rel=1e-6)


def compile_tiny(model, ignore_index=255):
    return training.compile_for_segmentation(model, 3, ignore_index, 1e-2)


@pytest.fixture
def tiny_shapes(tmp_path):
    root = shapes.make_shapes(
        tmp_path / "shapes", split_sizes={"train": 16, "val": 4, "test": 4}, image_size=32
    )
    return data.load_dataset(root)


TINY = training.TrainConfig(  # min_steps=0: exactly `epochs` passes (the tests count epochs)
    image_size=32,
    batch_size=8,
    epochs=4,
    learning_rate=1e-2,
    base_filters=4,
    patience=50,
    min_steps=0,
)


def test_recipe_lowers_the_loss_and_writes_checkpoint_and_logs(tiny_shapes, tmp_path):
    run_dir = tmp_path / "run"
    snapshots = training.PredictionSnapshots(np.zeros((32, 32, 3), np.float32))
    timer = training.TimeToTarget(target=-1.0)  # reached at once: records the first epoch
    _, history = training.train(
        tiny_shapes, TINY, run_dir=run_dir, callbacks=[snapshots, timer], verbose=0
    )
    assert history["loss"][-1] < history["loss"][0]
    assert set(history) >= {"loss", "mean_iou", "val_loss", "val_mean_iou"}
    assert (run_dir / "checkpoint.keras").is_file() and (run_dir / "logs").is_dir()
    assert training.completed_epochs(run_dir) == 4
    assert sorted(snapshots.masks) == [0, 1, 2, 3, 4]
    assert snapshots.masks[4].shape == (32, 32)
    assert timer.epoch_to_target == 1 and timer.train_seconds > 0


@pytest.mark.slow  # over 10 s: make verify
def test_resume_continues_from_the_checkpoint(tiny_shapes, tmp_path, capsys):
    run_dir = tmp_path / "run"
    training.train(tiny_shapes, TINY, run_dir=run_dir, verbose=0)
    longer = training.TrainConfig(**{**TINY.__dict__, "epochs": 6})
    _, history = training.train(tiny_shapes, longer, run_dir=run_dir, resume=True, verbose=0)
    assert "Resuming from checkpoint.keras after epoch 4." in capsys.readouterr().out
    assert len(history["loss"]) == 2
    assert training.completed_epochs(run_dir) == 6
    training.train(tiny_shapes, TINY, run_dir=run_dir, verbose=0)  # not resuming: fresh logs
    assert training.completed_epochs(run_dir) == 4


def test_load_or_train_trains_once_then_loads(tiny_shapes, tmp_path, capsys):
    path = tmp_path / "artifacts" / "unet_shapes.keras"
    first = training.load_or_train(tiny_shapes, TINY, path=path)
    assert "No trained model" in capsys.readouterr().out and path.is_file()
    second = training.load_or_train(tiny_shapes, TINY, path=path)
    assert f"Loaded the trained model from {path} (trained 4 epochs" in capsys.readouterr().out
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        first.predict(images, verbose=0), second.predict(images, verbose=0)
    )


def test_resolve_config_on_this_cpu_runtime():
    if runtime.gpu_details():
        pytest.skip("this test describes a CPU-only runtime")
    assert training.resolve_config() == training.CPU_CONFIG
    assert training.resolve_config(epochs=3).epochs == 3
    with pytest.raises(training.NoGPUError, match="Runtime -> Change runtime type -> GPU"):
        training.resolve_config(require_gpu=True)


def test_gpu_configuration_uses_mixed_precision_where_capable(monkeypatch):
    monkeypatch.setattr(
        runtime, "gpu_details", lambda: [{"name": "Tesla T4", "compute_capability": (7, 5)}]
    )
    config = training.resolve_config(require_gpu=True)
    assert config.mixed_precision and config.image_size == training.GPU_CONFIG.image_size
    assert training.set_precision(config) == "mixed_float16"
    assert runtime.precision_advice() == "mixed_float16 useful (Tensor Cores)"
    training.set_precision(training.CPU_CONFIG)
    assert keras.mixed_precision.global_policy().name == "float32"
    monkeypatch.setattr(
        runtime, "gpu_details", lambda: [{"name": "Tesla K80", "compute_capability": (3, 7)}]
    )
    assert not training.resolve_config().mixed_precision
    assert runtime.precision_advice() == "mixed_float16 not useful (no Tensor Cores)"


@pytest.mark.parametrize("amx", [True, False])
def test_cpu_configuration_stays_float32_and_mixed_means_bfloat16(monkeypatch, amx):
    monkeypatch.setattr(runtime, "gpu_details", lambda: [])
    monkeypatch.setattr(runtime, "cpu_has_amx_bfloat16", lambda: amx)
    assert training.resolve_config() == training.CPU_CONFIG  # AMX or not: measured no faster
    try:
        assert training.set_precision(training.CPU_CONFIG) == "float32"
        mixed = dataclasses.replace(training.CPU_CONFIG, mixed_precision=True)
        assert training.set_precision(mixed) == "mixed_bfloat16"  # a CPU has no float16 units
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_predict_masks_and_confusion_on_a_pipeline(tiny_shapes):
    model = models.unet(tiny_shapes.classes.num_classes, 32, depth=2, base_filters=4)
    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    masks = training.predict_masks(model, images)
    assert masks.shape == (3, 32, 32) and masks.dtype == np.uint8
    expected = np.argmax(model.predict(images, verbose=0), axis=-1)
    np.testing.assert_array_equal(masks, expected)
    batches = pipeline.make_pipeline(tiny_shapes.split("val"), 32, 3)
    matrix = training.confusion_on(model, batches, tiny_shapes.classes)
    assert matrix.shape == (5, 5) and matrix.sum() == 4 * 32 * 32


def test_recipe_trains_on_a_readers_folder_of_mixed_images(tmp_path):
    """Two classes, no splits, grayscale and RGB images of different sizes: works unchanged."""
    root = tmp_path / "mine"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.json").write_text(
        json.dumps({"names": ["background", "thing"], "colors": [[0, 0, 0], [9, 9, 9]]})
    )
    rng = np.random.default_rng(0)
    for index in range(30):
        height, width = 20 + index % 5 * 4, 24 + index % 3 * 8
        mask = np.zeros((height, width), np.uint8)
        mask[2:10, 3:12] = 1
        image = (rng.random((height, width)) * 60 + mask * 150).astype(np.uint8)
        mode_image = Image.fromarray(image) if index % 2 else Image.fromarray(image).convert("RGB")
        mode_image.save(root / "images" / f"p{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"p{index:02d}.png")
    dataset = data.load_dataset(root)
    config = training.TrainConfig(
        image_size=16, batch_size=8, epochs=2, base_filters=4, learning_rate=1e-2, min_steps=0
    )
    model, history = training.train(dataset, config, run_dir=tmp_path / "run", verbose=0)
    assert model.output_shape == (None, 16, 16, 2)
    assert len(history["val_mean_iou"]) == 2


def test_recipe_with_cross_entropy_dice_trains_and_resumes(tiny_shapes, tmp_path):
    config = training.TrainConfig(
        **{**TINY.__dict__, "epochs": 2, "loss": "cross_entropy_dice", "class_weight_power": 0}
    )
    run_dir = tmp_path / "run"
    model, history = training.train(tiny_shapes, config, run_dir=run_dir, verbose=0)
    assert model.loss.name == "cross_entropy_dice" and np.isfinite(history["loss"]).all()
    longer = training.TrainConfig(**{**config.__dict__, "epochs": 3})
    resumed, _ = training.train(tiny_shapes, longer, run_dir=run_dir, resume=True, verbose=0)
    assert resumed.loss.name == "cross_entropy_dice", "the custom loss survives the checkpoint"


def test_recipe_rejects_unknown_losses_and_weights_with_dice(tiny_shapes):
    with pytest.raises(ValueError, match="class_weight_power=0"):
        training.train(tiny_shapes, training.TrainConfig(class_weight_power=0.5))
    with pytest.raises(ValueError, match="loss must be one of"):
        training.compile_for_segmentation(models.unet(3, 16, depth=1), 3, None, 1e-3, "hinge")


def test_learning_rate_stays_at_its_peak_then_falls_linearly_to_the_floor():
    schedule = training.ConstantThenLinearDecay(peak=1e-2, total_steps=100, decay_fraction=0.4)
    rates = [float(schedule(step)) for step in (0, 30, 60, 80, 100, 150)]
    assert rates[:3] == pytest.approx([1e-2, 1e-2, 1e-2])
    assert rates[3] == pytest.approx(1e-5 + (1e-2 - 1e-5) / 2)  # halfway down the last 40 %
    assert rates[4] == rates[5] == pytest.approx(1e-5)
    again = training.ConstantThenLinearDecay.from_config(schedule.get_config())
    assert float(again(80)) == pytest.approx(rates[3])


def test_learning_rate_for_the_recipe():
    constant = training.TrainConfig(decay_fraction=0.0)
    assert training.learning_rate_for(constant, train_size=480) == constant.learning_rate
    schedule = training.learning_rate_for(training.TrainConfig(batch_size=8, epochs=60), 481)
    assert schedule.total_steps == 60 * 61  # the last, partial batch is a step too


def test_a_model_with_the_schedule_saves_and_loads_in_safe_mode(tmp_path):
    model = models.unet(3, 16, depth=1, base_filters=4)
    schedule = training.ConstantThenLinearDecay(1e-2, total_steps=10)
    training.compile_for_segmentation(model, 3, 255, schedule)
    model.fit(np.zeros((2, 16, 16, 3), np.float32), np.zeros((2, 16, 16)), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert isinstance(loaded.optimizer._learning_rate, training.ConstantThenLinearDecay)
    assert int(loaded.optimizer.iterations) == 1


def test_notebook_03s_training_cells_train_the_same_weights_as_train(tiny_shapes):
    """Notebook 03 writes out what train() does (pipeline, schedule, compile, callbacks, fit)
    and says that the two train the same model: its own cells, run here on a tiny dataset,
    give the same weights as train(), bit for bit."""
    config = dataclasses.replace(TINY, epochs=2)
    classes = tiny_shapes.classes

    def fresh_unet() -> keras.Model:
        runtime.seed_everything(0)
        return models.unet(classes.num_classes, config.image_size, config.base_filters)

    recipe_model, recipe_history = training.train(
        tiny_shapes, config, model=fresh_unet(), run_dir=training.ARTIFACTS_DIR / "r", verbose=0
    )
    val_batches = pipeline.make_pipeline(
        tiny_shapes.split("val"), config.image_size, config.batch_size
    )
    namespace = {
        **{"np": np, "keras": keras, "losses": losses, "pipeline": pipeline},
        **{"runtime": runtime, "training": training, "RESUME": False, "config": config},
        **{"dataset": tiny_shapes, "classes": classes, "train_pairs": tiny_shapes.split("train")},
        "val_batches": val_batches,
        **dict(zip(("val_images", "val_masks"), next(iter(val_batches)), strict=True)),
        "unet": fresh_unet(),
    }
    untrained = namespace["unet"].get_weights()
    for first_line in (
        "runtime.seed_everything(config.seed)",  # the training pipeline and the schedule
        "def cross_entropy_plus_dice(",  # the loss written out, checked against the recipe's
        "unet.compile(",
        "run_dir = training.default_run_dir(",  # the callbacks
        "if RESUME:",  # fit
    ):
        run(cell_starting("03_build_and_train", first_line), namespace)

    trained = namespace["unet"].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, untrained, strict=True))
    for mine, recipe in zip(trained, recipe_model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, recipe)
    assert namespace["history"]["val_mean_iou"] == recipe_history["val_mean_iou"]
    run_dir = namespace["run_dir"]
    assert json.loads((run_dir / "run.json").read_text())["epochs"] == 2
    assert training.completed_epochs(run_dir) == 2 and (run_dir / "checkpoint.keras").is_file()


def _variables_created_by_first_fit(model: keras.Model) -> list[str]:
    """Names of the variables the first ``fit`` of ``model`` creates (inside its trace)."""
    created = []

    def record(next_creator, **kwargs):
        created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    images = np.zeros((2, 16, 16, 3), np.float32)
    masks = np.zeros((2, 16, 16), np.int32)
    with tf.variable_creator_scope(record):
        model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    return created


def test_compile_builds_the_optimizer_so_fit_traces_its_step_once():
    # A tf.function that creates variables is traced twice; Keras would create Adam's moments
    # inside the first trace of the training step. compile_for_segmentation builds them first.
    plain = models.unet(3, 16, depth=1, base_filters=4)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    plain.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    assert len(_variables_created_by_first_fit(plain)) == 2 * len(plain.trainable_weights)

    recipe = compile_tiny(models.unet(3, 16, depth=1, base_filters=4))
    assert recipe.optimizer.built
    assert _variables_created_by_first_fit(recipe) == []
