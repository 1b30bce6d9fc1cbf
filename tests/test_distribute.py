"""helpers.distribute and the recipe under tf.distribute strategies (notebook 08).

In-process tests use the default strategy and one-device strategies; the two-replica and the
two-worker runs need TensorFlow configured before it starts, so they run
tests/distributed_script.py in fresh processes (with a timeout, leaving no process behind).
"""

from __future__ import annotations

import csv
import json
import types
from pathlib import Path

import processes
import pytest
import tensorflow as tf

from helpers import data, distribute, models, shapes, training

SCRIPT = Path(__file__).with_name("distributed_script.py")


# --- in-process: the default strategy and the arithmetic -------------------------------------


def test_the_default_strategy_is_one_replica_and_changes_nothing():
    default = tf.distribute.get_strategy()
    assert distribute.is_default(default)
    assert distribute.replicas(default) == 1
    assert distribute.describe(default) == "default strategy: 1 replica on this device"
    config = training.TrainConfig()
    assert training.global_config(config, default) is config


def test_choose_strategy_without_tpu_cluster_or_devices_is_the_default():
    assert distribute.choose_strategy(environ={}) is tf.distribute.get_strategy()
    assert not distribute.has_tpu(environ={}) or Path("/dev/accel0").exists()
    assert distribute.has_tpu(environ={"COLAB_TPU_ADDR": "10.0.0.2:8470"})


def test_global_batch_and_learning_rate_scale_with_the_replicas():
    four = types.SimpleNamespace(num_replicas_in_sync=4)
    assert distribute.global_batch_size(8, four) == 32
    assert distribute.scaled_learning_rate(3e-3, four) == pytest.approx(1.2e-2)
    scaled = training.global_config(training.TrainConfig(batch_size=8, learning_rate=3e-3), four)
    assert (scaled.batch_size, scaled.learning_rate) == (32, pytest.approx(1.2e-2))
    assert training.config_id(scaled) != training.config_id(training.TrainConfig())


def test_cluster_size_counts_the_tasks_of_tf_config():
    tf_config = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {}}
    assert distribute.cluster_size({"TF_CONFIG": json.dumps(tf_config)}) == 3
    assert distribute.cluster_size({}) == 0


def test_shard_by_data_sets_the_auto_shard_policy():
    batches = distribute.shard_by_data(tf.data.Dataset.range(4).batch(2))
    policy = batches.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    assert [b.tolist() for b in batches.as_numpy_iterator()] == [[0, 1], [2, 3]]


def test_split_cpu_after_start_says_what_to_do():
    tf.constant(1.0)  # TensorFlow has started in this process
    if len(tf.config.list_logical_devices("CPU")) == 3:
        pytest.skip("this process already has three CPU devices")
    with pytest.raises(RuntimeError, match="Call split_cpu first"):
        distribute.split_cpu(3)


def test_train_refuses_a_model_built_outside_the_strategys_scope(tmp_path):
    root = shapes.make_shapes(
        tmp_path / "shapes", split_sizes={"train": 8, "val": 4, "test": 4}, image_size=32
    )
    outside = models.unet(3, image_size=32, base_filters=4)
    strategy = tf.distribute.OneDeviceStrategy("/CPU:0")
    with pytest.raises(ValueError, match=r"Build it inside `with strategy.scope\(\):`"):
        training.train(
            data.load_dataset(root), training.TrainConfig(), model=outside, strategy=strategy
        )
    with strategy.scope():
        inside = models.unet(3, image_size=32, base_filters=4)
    assert inside.distribute_strategy is strategy


# --- fresh processes: two replicas, two workers ----------------------------------------------


def _start(args: list[str], env: dict[str, str]):
    return processes.start([str(SCRIPT), *args], env)


def _results(started: list) -> list[dict]:
    """The JSON each process printed after ``RESULT``."""
    return processes.last_json(started, prefix="RESULT ")


@pytest.mark.slow  # over 10 s: make verify
def test_mirrored_step_is_the_mean_of_the_per_replica_steps():
    """Two replicas of 4 images take the mean of their gradients: exactly what one device
    computes on each half, averaged. It is *not* the gradient of the batch of 8 as a whole:
    BatchNorm's statistics and the Dice term are computed per replica (notebook 08)."""
    (result,) = _results([_start(["equivalence"], {})])
    assert result["strategy"] == "MirroredStrategy: 2 replicas on CPU:0, CPU:1"
    assert result["loss_mirrored"] == pytest.approx(result["loss_mean_of_halves"], rel=1e-5)
    assert result["max_grad_diff_halves"] <= 1e-5 * result["max_grad"]
    assert result["max_grad_diff_whole"] > 100 * result["max_grad_diff_halves"]


def _history_rows(run_dir: Path) -> int:
    with (run_dir / "history.csv").open(newline="") as file:
        return sum(1 for _ in csv.DictReader(file))


@pytest.fixture
def small_shapes(tmp_path) -> Path:
    return shapes.make_shapes(
        tmp_path / "shapes", split_sizes={"train": 16, "val": 8, "test": 4}, image_size=32
    )


@pytest.mark.slow  # over 10 s: make verify
def test_the_recipe_trains_and_resumes_on_two_replicas(small_shapes, tmp_path):
    run_dir = tmp_path / "run"
    (first,) = _results([_start(["train", str(small_shapes), str(run_dir), "2"], {})])
    assert first["strategy"] == "MirroredStrategy: 2 replicas on CPU:0, CPU:1"
    assert (first["epochs_run"], _history_rows(run_dir)) == (2, 2)
    assert (run_dir / "checkpoint.keras").is_file()
    args = ["train", str(small_shapes), str(run_dir), "3", "--resume"]
    (resumed,) = _results([_start(args, {})])
    assert (resumed["epochs_run"], _history_rows(run_dir)) == (1, 3)


def test_two_workers_are_refused_with_the_reason_before_training(small_shapes, tmp_path):
    """Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585): both
    workers of a two-worker cluster on the loopback interface stop at once with the reason
    and the alternatives, having written nothing."""
    args = ["train", str(small_shapes), str(tmp_path / "run"), "2"]
    started = [_start(args, env) for env in processes.cluster_env(2)]
    outputs = processes.outputs(started)
    for process, output in zip(started, outputs, strict=True):
        assert process.returncode != 0
        assert (
            "NotImplementedError: The recipe cannot train under MultiWorkerMirroredStrategy"
            in output
        )
        assert "keras-team/keras#20585" in output and "MirroredStrategy" in output
        assert "python -m helpers.loop" in output  # the way that works
    assert not (tmp_path / "run").exists()
