"""helpers.loop: the training loop of notebook 08, on one device here and, in fresh processes,
on two replicas of one process and on a cluster of two local workers."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import keras
import numpy as np
import processes
import pytest
import tensorflow as tf

from helpers import data, loop, models, shapes, training

TINY = training.TrainConfig(
    image_size=32, batch_size=2, epochs=2, learning_rate=1e-2, base_filters=4, min_steps=0, seed=3
)


@pytest.fixture(scope="module")
def tiny_shapes(tmp_path_factory) -> Path:
    return shapes.make_shapes(
        tmp_path_factory.mktemp("loop") / "shapes",
        split_sizes={"train": 10, "val": 6, "test": 2},
        image_size=32,
    )


def _history(run_dir: Path) -> dict:
    return json.loads((run_dir / loop.HISTORY).read_text(encoding="utf-8"))


# --- in-process: one device -------------------------------------------------------------------


def test_the_loop_trains_logs_and_resumes_from_its_checkpoint(tiny_shapes, tmp_path):
    dataset, default = data.load_dataset(tiny_shapes), tf.distribute.get_strategy()
    model, first = loop.train_loop(dataset, TINY, default, tmp_path / "run")
    assert model.output_shape == (None, 32, 32, dataset.classes.num_classes)
    assert (first.first_epoch, len(first.loss), len(first.val_mean_iou)) == (0, 2, 2)
    assert all(np.isfinite(first.loss)) and all(0 <= v <= 1 for v in first.val_mean_iou)
    assert _history(tmp_path / "run")["loss"] == first.loss
    assert tf.train.latest_checkpoint(tmp_path / "run" / loop.CHECKPOINTS).endswith("ckpt-2")
    longer = training.dataclasses.replace(TINY, epochs=3)
    _, resumed = loop.train_loop(dataset, longer, default, tmp_path / "run")
    assert resumed.first_epoch == 2 and len(resumed.loss) == 3
    assert resumed.loss[:2] == first.loss  # the earlier epochs, from the chief's log
    assert _history(tmp_path / "run")["loss"] == resumed.loss
    _, done = loop.train_loop(dataset, longer, default, tmp_path / "run")  # nothing left to do
    assert done.first_epoch == 3 and done.loss == resumed.loss


def test_resuming_drops_logged_epochs_that_no_checkpoint_holds(tiny_shapes, tmp_path):
    """A crash between the log and the checkpoint: the log has one epoch more."""
    dataset, default = data.load_dataset(tiny_shapes), tf.distribute.get_strategy()
    loop.train_loop(dataset, TINY, default, tmp_path)
    log = _history(tmp_path)
    log["loss"].append(9.0), log["val_mean_iou"].append(0.0), log["seconds"].append(1.0)
    (tmp_path / loop.HISTORY).write_text(json.dumps(log), encoding="utf-8")
    resumed = loop._resumed_history(tmp_path, epochs_done=2)
    assert resumed.loss == log["loss"][:2] and resumed.first_epoch == 2


def test_batches_keep_the_remainder_off_a_tpu(tiny_shapes):
    """10 training pairs in global batches of 4: 3 steps, the last of 2 pairs (a TPU strategy
    drops it; on a CPU nothing changes)."""
    dataset = data.load_dataset(tiny_shapes)
    config = training.dataclasses.replace(TINY, batch_size=4)
    train, val, steps = loop.distributed_batches(dataset, config, tf.distribute.get_strategy())
    assert steps == 3
    assert [int(images.shape[0]) for images, _ in train] == [4, 4, 2]
    assert sum(int(images.shape[0]) for images, _ in val) == 6


def test_synchronized_batchnorm_copies_the_model_and_its_weights():
    keras.utils.set_random_seed(0)
    model = models.unet(3, image_size=32, base_filters=4)
    synced = loop.synchronize_batchnorm(model)
    norms = [layer for layer in synced.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.synchronized for layer in norms)
    assert not any(getattr(layer, "synchronized", False) for layer in model.layers)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    # one device: the same statistics, summed in another order
    np.testing.assert_allclose(
        synced(images, training=True), model(images, training=True), atol=1e-4
    )


def test_only_the_chief_keeps_checkpoints(tmp_path):
    def worker(task_type: str | None, task_id: int = 0) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            cluster_resolver=types.SimpleNamespace(task_type=task_type, task_id=task_id)
        )

    assert loop.is_chief(tf.distribute.get_strategy())
    assert loop.is_chief(worker(None)) and loop.is_chief(worker("chief"))
    assert loop.is_chief(worker("worker", 0)) and not loop.is_chief(worker("worker", 1))
    assert loop.save_dir(tmp_path, worker("worker", 0)) == tmp_path / loop.CHECKPOINTS
    assert loop.save_dir(tmp_path, worker("worker", 1)) == tmp_path / ".worker-1"


# the options of every run below: the tiny configuration
OPTIONS = ["--batch-size", "2", "--image-size", "32", "--base-filters", "4", "--seed", "3"]


def test_the_command_line_trains_one_worker(tiny_shapes, tmp_path, capsys):
    loop.main([str(tiny_shapes), str(tmp_path / "run"), "--epochs", "1", *OPTIONS])
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (report["replicas"], report["chief"], len(report["loss"])) == (1, True, 1)


# --- fresh processes: two replicas of one process, two workers --------------------------------


def _run(
    tiny_shapes: Path, run_dir: Path, epochs: int, envs: list[dict[str, str]], *extra: str
) -> list:
    args = ["-m", "helpers.loop", str(tiny_shapes), str(run_dir), "--epochs", str(epochs)]
    args += [*OPTIONS, *extra]
    return [processes.start(args, env) for env in envs]


@pytest.mark.slow  # over 10 s: make verify
def test_two_workers_train_as_two_replicas_of_one_process(tiny_shapes, tmp_path):
    """A cluster of two local workers (MultiWorkerMirroredStrategy, one replica each) computes
    what one process with two replicas (MirroredStrategy) does; only the chief keeps files."""
    chief, other = processes.last_json(
        _run(tiny_shapes, tmp_path / "cluster", 2, processes.cluster_env(2))
    )
    (mirrored,) = processes.last_json(
        _run(tiny_shapes, tmp_path / "one", 2, [{}], "--cpu-devices", "2")
    )
    assert (chief["chief"], other["chief"]) == (True, False)
    assert chief["replicas"] == other["replicas"] == mirrored["replicas"] == 2
    assert other["loss"] == chief["loss"]  # the same reduced numbers on every worker
    np.testing.assert_allclose(chief["loss"], mirrored["loss"], rtol=1e-5)
    np.testing.assert_allclose(chief["val_mean_iou"], mirrored["val_mean_iou"], atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "cluster").iterdir()) == [
        loop.CHECKPOINTS,
        loop.HISTORY,
    ]


@pytest.mark.slow  # over 10 s: make verify
def test_a_killed_cluster_resumes_from_the_chiefs_last_checkpoint(tiny_shapes, tmp_path):
    run_dir = tmp_path / "cluster"
    started = _run(tiny_shapes, run_dir, 500, processes.cluster_env(2))
    deadline = time.monotonic() + processes.TIMEOUT_S
    while not (run_dir / loop.HISTORY).is_file() or len(_history(run_dir)["loss"]) < 3:
        assert time.monotonic() < deadline and all(p.poll() is None for p in started)
        time.sleep(0.05)
    for process in reversed(started):  # the second worker, then the chief (left waiting)
        processes.kill(process)
    latest = tf.train.latest_checkpoint(run_dir / loop.CHECKPOINTS)
    done = int(tf.train.load_variable(latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    assert done >= 2
    chief, other = processes.last_json(
        _run(tiny_shapes, run_dir, done + 1, processes.cluster_env(2))
    )
    assert chief["first_epoch"] == other["first_epoch"] == done
    assert len(chief["loss"]) == done + 1 and all(np.isfinite(chief["loss"]))
