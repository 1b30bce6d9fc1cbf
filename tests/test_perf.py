"""helpers.perf: the harness's maths with a fake clock, pipelines, FLOPs counted by hand, traces.

No assertion here depends on how fast this machine is: the clock is fake wherever a time is
checked, and real measurements are only checked for being positive and finite.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import data, models, perf, shapes, training

matplotlib.use("Agg")


class FakeClock:
    """A clock that only moves when a fake workload says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def workload(self, *durations: float, log: list[str] | None = None, name: str = ""):
        """A variant whose n-th call takes durations[n] seconds (the last one repeats)."""
        calls = iter(range(10**6))

        def run() -> None:
            index = next(calls)
            self.now += durations[min(index, len(durations) - 1)]
            if log is not None:
                log.append(name)

        return run


def test_stopwatch_measures_its_block():
    clock = FakeClock()
    with perf.Stopwatch(clock) as watch:
        clock.now += 2.5
    assert watch.seconds == 2.5


def test_compare_excludes_warmup_takes_the_median_and_counts_repeats():
    clock, log = FakeClock(), []
    variants = {
        "slow": clock.workload(100.0, 4.0, 2.0, 3.0, log=log, name="slow"),  # warm-up 100 s
        "fast": clock.workload(50.0, 1.0, 1.0, 0.5, log=log, name="fast"),
    }
    comparison = perf.compare(variants, items=60, warmup=1, repeats=3, clock=clock)
    slow, fast = comparison["slow"], comparison["fast"]
    assert slow.seconds == (4.0, 2.0, 3.0) and slow.warmup_seconds == (100.0,)
    assert slow.repeats == 3 and slow.median_seconds == 3.0 and slow.min_seconds == 2.0
    assert fast.median_seconds == 1.0 and fast.items_per_second == 60.0
    assert fast.best_items_per_second == 120.0
    assert comparison.baseline == "slow"  # the first variant by default
    assert comparison.ratio("fast") == pytest.approx(3.0)
    assert comparison.ratios() == pytest.approx({"slow": 1.0, "fast": 3.0})
    # warm-ups first, then the repeats go round-robin
    assert log == ["slow", "fast"] + ["slow", "fast"] * 3


def test_compare_counts_items_from_the_return_value_or_a_mapping():
    clock = FakeClock()

    def make(seconds: float, images: int):
        def run() -> int:
            clock.now += seconds
            return images

        return run

    comparison = perf.compare(
        {"a": make(2.0, 10), "b": make(1.0, 20)}, baseline="b", warmup=0, repeats=2, clock=clock
    )
    assert comparison["a"].items == 10 and comparison["a"].items_per_second == 5.0
    assert comparison.ratio("a") == pytest.approx(0.25) and comparison.ratio("b") == 1.0
    mapped = perf.compare(
        {"a": make(2.0, 0), "b": make(2.0, 0)}, items={"a": 4, "b": 8}, repeats=1, clock=clock
    )
    assert mapped.ratio("b") == pytest.approx(2.0)


def test_compare_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        perf.compare({})
    with pytest.raises(ValueError, match="baseline"):
        perf.compare({"a": lambda: 1}, baseline="b")
    with pytest.raises(ValueError, match="repeats"):
        perf.compare({"a": lambda: 1}, repeats=0)
    with pytest.raises(TypeError, match="items"):
        perf.compare({"a": lambda: None}, repeats=1)


def test_table_and_plot_show_every_variant_and_its_ratio():
    clock = FakeClock()
    comparison = perf.compare(
        {"baseline": clock.workload(2.0), "twice as fast": clock.workload(1.0)},
        items=10,
        repeats=2,
        clock=clock,
    )
    table = comparison.table()
    assert table.splitlines()[0].split()[:2] == ["variant", "images/s"]
    assert "x baseline" in table.splitlines()[0]
    assert table.splitlines()[2].split()[-1] == "2.00"
    assert table.splitlines()[1].split()[-2] == "2.00"  # warm-up seconds
    ax = perf.plot_ratios(comparison, title="Speed")
    assert ax.get_title() == "Speed" and "baseline" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["twice as fast", "baseline"]
    log_axis = perf.plot_ratios(comparison, title="Speed", log=True)
    assert log_axis.get_xscale() == "log" and log_axis.get_xlim()[0] > 0
    assert "log scale" in log_axis.get_xlabel()


def test_drain_counts_images_and_in_memory_freezes_static_batches():
    images = np.arange(10 * 2 * 2 * 3, dtype=np.float32).reshape(10, 2, 2, 3)
    masks = np.zeros((10, 2, 2), np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)  # 4, 4, 2
    assert perf.drain(batches) == 10
    assert perf.drain([np.zeros((3, 1)), np.zeros((2, 1))]) == 5  # bare arrays too
    frozen = perf.in_memory(batches)
    assert frozen.element_spec[0].shape.as_list() == [4, 2, 2, 3]  # static, last batch dropped
    assert perf.drain(frozen) == 8
    first = [b[0].numpy() for b in frozen]
    again = [b[0].numpy() for b in frozen]
    np.testing.assert_array_equal(first, again)
    assert perf.drain(perf.in_memory(batches, count=1)) == 4
    with pytest.raises(ValueError, match="no batches"):
        perf.in_memory([])


@pytest.fixture
def shapes_pairs(tmp_path):
    root = shapes.make_shapes(tmp_path / "shapes", split_sizes={"train": 10}, image_size=40, seed=3)
    return data.load_dataset(root).split("train")


def test_naive_batches_read_the_files_exactly_without_augmentation(shapes_pairs):
    batches = list(perf.naive_batches(shapes_pairs, 40, batch_size=4, augment=False, seed=1))
    assert [len(images) for images, _ in batches] == [4, 4, 2]
    images, masks = batches[0]
    assert images.dtype == np.float32 and masks.dtype == np.int32
    assert images.shape == (4, 40, 40, 3) and masks.shape == (4, 40, 40)
    order = np.random.default_rng(1).permutation(len(shapes_pairs))
    first = shapes_pairs[order[0]]
    np.testing.assert_allclose(images[0], np.asarray(Image.open(first.image)) / 255, atol=1e-6)
    np.testing.assert_array_equal(masks[0], np.asarray(Image.open(first.mask)))


def test_naive_augmentation_is_seeded_and_keeps_labels(shapes_pairs):
    def epoch(seed):
        return list(perf.naive_batches(shapes_pairs, 32, batch_size=5, seed=seed))

    first, same, other = epoch(7), epoch(7), epoch(8)
    for (a, ma), (b, mb) in zip(first, same, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ma, mb)
    assert not np.array_equal(first[0][0], other[0][0])
    for images, masks in first:
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert set(np.unique(masks)) <= set(range(5)), "nearest-neighbour: no invented labels"


def test_generator_dataset_knows_its_length_and_changes_each_epoch(shapes_pairs):
    batches = perf.generator_dataset(shapes_pairs, 32, batch_size=4, seed=0)
    assert int(batches.cardinality()) == 3
    first = [images.numpy() for images, _ in batches]
    second = [images.numpy() for images, _ in batches]
    assert sum(len(b) for b in first) == 10
    assert not np.array_equal(first[0], second[0]), "a new order / augmentation each epoch"


def _tiny_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 positions x (3*3*3*4) = 6,912
    x = keras.layers.BatchNormalization()(x)  # not counted
    x = keras.layers.MaxPooling2D()(x)  # -> 4x4x4, not counted
    x = keras.layers.Conv2DTranspose(2, 2, strides=2)(x)  # 4*4 inputs x (2*2*2*4) = 512
    outputs = keras.layers.Dense(5)(x)  # 8*8 positions x (2*5) = 640
    return keras.Model(inputs, outputs)


def test_flops_are_counted_from_conv_transposed_conv_and_dense_layers_by_hand():
    model = _tiny_model()
    macs = [perf.layer_macs(layer) for layer in model.layers]
    assert macs == [0, 6912, 0, 0, 512, 640]
    assert sum(perf.forward_flops_by_layer(model).values()) == 2 * (6912 + 512 + 640)
    assert perf.training_step_flops(model, batch_size=2) == 3 * 2 * 8064 * 2
    nested = keras.Sequential([keras.Input((8, 8, 3)), _tiny_model()])
    assert perf.training_step_flops(nested, 1) == 3 * 2 * 8064


def test_the_course_unet_costs_74_megaflops_per_image_forward():
    # Counted by hand, 64x64 input, 8 filters doubling over 3 levels (see the notebook):
    # seven 3x3 convs of 2,359,296 MACs, three of 1,179,648, three decoder convs after a
    # concatenation of 4,718,592, the first conv 884,736, three transposed convs of 524,288,
    # and the 1x1 logits 163,840.
    macs = 7 * 2_359_296 + 3 * 1_179_648 + 3 * 4_718_592 + 884_736 + 3 * 524_288 + 163_840
    model = models.unet(5, image_size=64, base_filters=8)
    assert sum(perf.forward_flops_by_layer(model).values()) == 2 * macs == 73_662_464
    assert perf.training_step_flops(model, 16) == 3 * 16 * 2 * macs


def test_measured_peak_and_clock_are_plausible_numbers():
    peak = perf.matmul_flops_per_second(size=64, chain=2, repeats=1)
    assert math.isfinite(peak) and peak > 0
    frequency = perf.cpu_frequency_hz()
    assert frequency is None or frequency > 1e6


def test_op_determinism_is_restored():
    from tensorflow.python.framework import config

    before = config.is_op_determinism_enabled()
    with perf.op_determinism(False):
        assert not config.is_op_determinism_enabled()
        with perf.op_determinism(True):
            assert config.is_op_determinism_enabled()
        assert not config.is_op_determinism_enabled()
    assert config.is_op_determinism_enabled() == before


def _space(tmp_path, planes):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    for plane_name, events, tf_ops in planes:
        plane = space.planes.add(name=plane_name)
        plane.stat_metadata[1].id, plane.stat_metadata[1].name = 1, "tf_op"
        line = plane.lines.add(name="thread")
        for index, (name, picoseconds) in enumerate(events, start=1):
            plane.event_metadata[index].id, plane.event_metadata[index].name = index, name
            event = line.events.add(metadata_id=index, duration_ps=picoseconds)
            if tf_ops:
                event.stats.add(metadata_id=1, str_value=tf_ops[index - 1])
    path = tmp_path / "plugins" / "profile" / "run" / "host.xplane.pb"
    path.parent.mkdir(parents=True)
    path.write_bytes(space.SerializeToString())
    return path


def test_top_ops_sums_op_events_by_type_and_skips_the_rest(tmp_path):
    events = [
        ("model/conv1/convolution:Conv2D", 6_000_000_000),  # 6 ms
        ("model/conv2/convolution:Conv2D", 2_000_000_000),
        ("model/relu:Relu", 2_000_000_000),
        ("ExecutorState::Process", 50_000_000_000),  # host bookkeeping, not an op
        ("Iterator::Root::Prefetch", 9_000_000_000),  # input pipeline, not an op
        ("EagerExecute", 9_000_000_000),
    ]
    _space(tmp_path, [("/host:CPU", events, None)])
    ops = perf.top_ops(tmp_path)  # the folder: finds the newest trace in it
    assert [(op.op_type, op.milliseconds, op.count) for op in ops] == [
        ("Conv2D", 8.0, 2),
        ("Relu", 2.0, 1),
    ]
    assert [op.share for op in ops] == pytest.approx([0.8, 0.2])
    assert perf.top_ops(tmp_path, limit=1)[0].op_type == "Conv2D"
    table = perf.ops_table(ops)
    assert table.splitlines()[1].split() == ["Conv2D", "8.0", "80.0%", "2"]


def test_top_ops_counts_gpu_kernels_by_the_op_that_launched_them(tmp_path):
    host = [("model/conv:Conv2D", 1_000_000_000_000)]  # launch time on the host: ignored
    kernels = [("volta_sgemm_128x64", 3_000_000), ("fused_relu_kernel", 1_000_000)]
    _space(
        tmp_path,
        [
            ("/host:CPU", host, None),
            ("/device:GPU:0", kernels, ["model/conv:Conv2D", "model/relu:Relu"]),
        ],
    )
    assert [op.op_type for op in perf.top_ops(tmp_path)] == ["Conv2D", "Relu"]


def test_a_captured_trace_is_found_and_read_by_top_ops(tmp_path):
    @tf.function
    def work(x):
        return tf.matmul(x, x)

    x = tf.ones((64, 64))
    work(x)
    tf.profiler.experimental.start(str(tmp_path))  # what TensorBoard(profile_batch=...) does
    for _ in range(3):
        work(x)
    tf.profiler.experimental.stop()
    path = perf.latest_trace(tmp_path)
    assert path.name.endswith(".xplane.pb") and path.is_file()
    op_types = [op.op_type for op in perf.top_ops(path, limit=None)]
    assert any(op.endswith("MatMul") for op in op_types), op_types  # _MklMatMul with oneDNN
    with pytest.raises(FileNotFoundError):
        perf.latest_trace(tmp_path / "nothing")


def _run(name, reached, seconds=10.0):
    return perf.BudgetRun(
        name=name,
        epochs=2,
        train_seconds=seconds,
        images_per_second=100.0,
        target=0.5,
        seconds_to_target=reached,
        epochs_to_target=2 if reached else None,
        val_mean_iou=(0.3, 0.6 if reached else 0.4),
        seconds_at_epoch=(seconds / 2, seconds),
    )


def test_runs_table_reports_time_to_target_and_speed_up():
    table = perf.runs_table([_run("base", 8.0), _run("fast", 4.0), _run("never", None)])
    header, base, fast, never = table.splitlines()
    assert "s to 0.50" in header and header.split()[-1] == "speed-up"
    assert fast.split()[1:3] == ["4.0", "2"] and fast.split()[-1] == "2.00"
    assert base.split()[-1] == "1.00"
    assert never.split()[1:4] == ["—", "—", "0.400"] and never.split()[-1] == "—"
    assert perf.runs_table([_run("a", None), _run("b", 2.0)], baseline="a").split()[-1] == "—"
    with pytest.raises(ValueError):
        perf.runs_table([])


@pytest.fixture
def tiny_dataset(tmp_path):
    root = shapes.make_shapes(
        tmp_path / "tiny", split_sizes={"train": 8, "val": 4}, image_size=32, seed=2
    )
    return data.load_dataset(root)


TINY = training.TrainConfig(image_size=32, batch_size=4, epochs=2, base_filters=4)


def test_train_for_budget_records_one_run_with_any_optimizer(tiny_dataset):
    run = perf.train_for_budget(
        tiny_dataset,
        TINY,
        target=0.0,  # reached after the first epoch, whatever the model learned
        name="sgd",
        optimizer=keras.optimizers.SGD(0.01),
        train_pairs=tiny_dataset.split("train")[:4],
        per_class=True,
    )
    assert run.name == "sgd" and run.epochs == 2 and len(run.val_mean_iou) == 2
    assert run.epochs_to_target == 1 and run.seconds_to_target == run.seconds_at_epoch[0]
    assert run.seconds_at_epoch[1] == pytest.approx(run.train_seconds)
    assert run.images_per_second == pytest.approx(2 * 4 / run.train_seconds)
    assert run.iou_per_class is not None and len(run.iou_per_class) == 5
    assert run.best_val_mean_iou == max(run.val_mean_iou)


def test_budget_table_prints_each_run_and_the_mean_of_each_variant():
    variants = {
        "narrow": [(_run("narrow 1", 8.0), 0.1), (_run("narrow 2", None), 0.3)],
        "wide": [(_run("wide 1", 4.0, seconds=4.0), 0.5)],
    }
    header, *rows, narrow, wide = perf.budget_table(variants, budget_seconds=9.0).splitlines()
    assert header.split() == [
        "run",
        "images/s",
        "s",
        "to",
        "0.5",
        "best@9s",
        "best",
        "%",
        "of",
        "peak",
    ]
    assert [row.split()[:4] for row in rows] == [
        ["narrow", "1", "100", "8"],
        ["narrow", "2", "100", "—"],
        ["wide", "1", "100", "4"],
    ]
    assert rows[0].split()[-3:] == ["0.300", "0.600", "10.0%"]  # epochs end at 5 and 10 s
    assert rows[2].split()[-3:] == ["0.600", "0.600", "50.0%"]  # epochs end at 2 and 4 s
    assert narrow.startswith("mean of 2, narrow: images/s 100.000, best@9s 0.300, best 0.500")
    assert narrow.endswith("share of peak 0.200; seed range of best@9s 0.000")
    assert wide.endswith("share of peak 0.500; seed range of best@9s 0.000")


def test_best_within_a_budget_counts_only_the_epochs_that_ended_in_it():
    run = _run("base", 8.0, seconds=10.0)  # epochs end at 5 s (0.3) and 10 s (0.6)
    assert run.best_within(10.0) == 0.6
    assert run.best_within(9.9) == 0.3
    assert run.best_within(4.0) == 0.0


@pytest.mark.slow  # over 10 s: make verify
def test_side_by_side_runs_give_the_same_results_as_runs_alone(tiny_dataset, capsys):
    alone = perf.train_for_budget(tiny_dataset, TINY, target=2.0)  # a target never reached
    together = perf.train_side_by_side(
        tiny_dataset,
        {
            "three epochs, batch 2": perf.RunSpec(
                dataclasses.replace(TINY, batch_size=2, epochs=3)
            ),
            "default": perf.RunSpec(TINY),
        },
        target=2.0,
        progress=True,
    )
    progress = capsys.readouterr().out.splitlines()
    assert len(progress) == 3 and progress[0].startswith("epoch 1/3 of 2 runs, ")
    assert "best validation mean IoU so far" in progress[-1]
    assert list(together) == ["three epochs, batch 2", "default"]
    assert together["default"].val_mean_iou == alone.val_mean_iou  # interleaving changes nothing
    assert len(together["three epochs, batch 2"].val_mean_iou) == 3
    assert together["default"].seconds_to_target is None
    assert together["default"].epochs_to_target is None


def test_fit_steps_runs_the_steps_and_needs_a_static_batch():
    model = models.unet(3, image_size=16, base_filters=2, depth=1)
    classes = data.Classes(("a", "b", "c"), ((0, 0, 0),) * 3, 255)
    optimizer = keras.optimizers.SGD(1e-3)
    perf.compile_with_optimizer(model, classes, optimizer)
    assert model.optimizer is optimizer and optimizer.built  # built before fit, no other one
    images = np.zeros((4, 16, 16, 3), np.float32)
    masks = np.zeros((4, 16, 16), np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(2)
    assert perf.fit_steps(model, perf.in_memory(batches), steps=3)() == 6
    assert model.optimizer.iterations.numpy() == 3
    with pytest.raises(ValueError, match="static"):
        perf.fit_steps(model, batches, steps=1)


def test_fit_steps_counts_the_steps_that_whole_executions_ran():
    model = models.unet(3, image_size=16, base_filters=2, depth=1)
    classes = data.Classes(("a", "b", "c"), ((0, 0, 0),) * 3, 255)
    perf.compile_with_optimizer(model, classes, keras.optimizers.Adam(1e-3), steps_per_execution=4)
    images = np.zeros((4, 16, 16, 3), np.float32)
    masks = np.zeros((4, 16, 16), np.int32)
    batches = perf.in_memory(tf.data.Dataset.from_tensor_slices((images, masks)).batch(2))
    assert perf.fit_steps(model, batches, steps=3)() == 4 * 2  # one execution of 4 steps
    assert model.optimizer.iterations.numpy() == 4


def test_pipeline_variants_feed_the_same_images_from_worst_to_best(shapes_pairs):
    feeds = perf.pipeline_variants(shapes_pairs, 32, batch_size=4, seed=0)
    assert list(feeds) == [
        "Python generator (PIL)",
        "tf.data, parallel map",
        "+ cache",
        "+ prefetch",
        "in memory",
    ]
    counts = {name: perf.drain(feed) for name, feed in feeds.items()}
    assert counts == {**dict.fromkeys(list(feeds)[:4], 10), "in memory": 8}  # 2 full batches
    for feed in feeds.values():
        images, masks = next(iter(feed))
        assert tuple(images.shape[1:]) == (32, 32, 3) and tuple(masks.shape[1:]) == (32, 32)


def test_batch_size_comparison_runs_equal_images_and_tabulates_steps():
    model = models.unet(3, image_size=16, base_filters=2, depth=1)
    classes = data.Classes(("a", "b", "c"), ((0, 0, 0),) * 3, 255)
    perf.compile_with_optimizer(model, classes, keras.optimizers.Adam(1e-3), "cross_entropy_dice")
    assert type(model.loss).__name__ == "CrossEntropyDiceLoss"  # the recipe's loss, by name
    images = np.zeros((16, 16, 16, 3), np.float32)
    masks = np.zeros((16, 16, 16), np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    comparison = perf.compare_batch_sizes(model, batches, (2, 8), 8, baseline=8, repeats=1)
    assert comparison.names == ["batch 2", "batch 8"] and comparison.baseline == "batch 8"
    assert comparison["batch 2"].items == comparison["batch 8"].items == 8
    rows = perf.batch_size_table(comparison).splitlines()
    assert "x batch 8" in rows[0]
    assert [row.split()[0] for row in rows[1:]] == ["2", "8"]
    assert rows[2].split()[-1] == "1.00"
    with pytest.raises(ValueError, match="at least the batch size"):
        perf.compare_batch_sizes(model, batches, (16,), 8, baseline=16)


def test_class_weights_need_plain_cross_entropy():
    config = training.TrainConfig(loss="cross_entropy_dice", class_weight_power=0.5)
    with pytest.raises(ValueError, match="plain cross-entropy"):
        perf.train_for_budget(None, config, target=0.5)  # refused before any data is read
