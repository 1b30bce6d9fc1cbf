"""Data parallelism with ``tf.distribute``: which strategy, how many replicas, the global batch
and its learning rate (taught in notebook 08).

The recipe (:func:`helpers.training.train`) runs unchanged on one device (TensorFlow's default
strategy), on several GPUs or logical CPU devices (``MirroredStrategy``) and on a TPU
(``TPUStrategy``; written, not yet run on one). ``MultiWorkerMirroredStrategy`` (several
machines, ``TF_CONFIG``) is refused with the reason (see :func:`check_supported`); the course's
own training loop, :mod:`helpers.loop`, runs under it.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping

import tensorflow as tf

# The rule the recipe scales its learning rate by: linear in the number of replicas ("linear
# scaling", Goyal et al. 2017). A batch N times larger averages N times as many gradients, so
# one step may go N times as far. Notebook 08 measures it against keeping the rate.
LEARNING_RATE_SCALING = "linear"


def split_cpu(count: int) -> list[str]:
    """Split the CPU into ``count`` logical devices (``/CPU:0`` ...) and return their names.

    Lets one machine run ``MirroredStrategy`` over several "devices" to check correctness; it
    does not make anything faster (the devices share the same cores). Must run before
    TensorFlow creates any tensor; afterwards it raises a RuntimeError saying so.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != count:
        try:
            tf.config.set_logical_device_configuration(cpu, wanted)
        except RuntimeError as error:
            raise RuntimeError(
                f"Cannot split the CPU into {count} devices: TensorFlow has already started "
                f"({error}). Call split_cpu first, before any model or tensor is made "
                "(restart the kernel, then run the setup cell first)."
            ) from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def _tpu_resolver(environ: Mapping[str, str]) -> tf.distribute.cluster_resolver.ClusterResolver:
    """The TPU's cluster resolver: a TPU VM (``/dev/accel*``, Colab's TPU runtime) or a TPU
    named by ``TPU_NAME`` / ``COLAB_TPU_ADDR``."""
    if environ.get("TPU_NAME") or environ.get("COLAB_TPU_ADDR"):
        return tf.distribute.cluster_resolver.TPUClusterResolver()
    return tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")


def has_tpu(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this runtime has a TPU (without contacting anything when it does not)."""
    return bool(
        environ.get("TPU_NAME") or environ.get("COLAB_TPU_ADDR") or glob.glob("/dev/accel*")
    )


def cluster_size(environ: Mapping[str, str] = os.environ) -> int:
    """How many tasks ``TF_CONFIG`` lists (0 when it is not set)."""
    if not environ.get("TF_CONFIG"):
        return 0
    cluster = json.loads(environ["TF_CONFIG"]).get("cluster", {})
    return sum(len(tasks) for tasks in cluster.values())


def choose_strategy(environ: Mapping[str, str] = os.environ) -> tf.distribute.Strategy:
    """The strategy for this runtime: a TPU -> ``TPUStrategy``; ``TF_CONFIG`` with several
    tasks -> ``MultiWorkerMirroredStrategy``; more than one GPU (or logical CPU device made by
    :func:`split_cpu`) -> ``MirroredStrategy``; otherwise the default (one-device) strategy."""
    if has_tpu(environ):
        resolver = _tpu_resolver(environ)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if cluster_size(environ) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([device.name for device in cpus])
    return tf.distribute.get_strategy()


def replicas(strategy: tf.distribute.Strategy) -> int:
    """How many copies of the model train in step (1 for the default strategy)."""
    return int(strategy.num_replicas_in_sync)


def is_default(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is TensorFlow's default one: no distribution, one device."""
    # TensorFlow exports no class for it; outside any scope, get_strategy() returns it.
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line: the strategy, its replicas and their devices, e.g. ``"MirroredStrategy: 2
    replicas on CPU:0, CPU:1"``."""
    if is_default(strategy):
        return "default strategy: 1 replica on this device"
    specs = [tf.DeviceSpec.from_string(name) for name in strategy.extended.worker_devices]
    devices = ", ".join(f"{spec.device_type}:{spec.device_index}" for spec in specs)
    count = replicas(strategy)
    return f"{type(strategy).__name__}: {count} replica{'s' * (count != 1)} on {devices}"


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """The batch one optimizer step averages over: per-replica batch x replicas."""
    return per_replica * replicas(strategy)


def scaled_learning_rate(learning_rate: float, strategy: tf.distribute.Strategy) -> float:
    """The learning rate for the global batch, by :data:`LEARNING_RATE_SCALING` (linear)."""
    return learning_rate * replicas(strategy)


# Keras 3's fit cannot train under MultiWorkerMirroredStrategy with the pinned TensorFlow 2.21:
# it reduces a whole (images, masks) batch with strategy.reduce, which that strategy takes one
# tensor at a time, and fails further on when that is worked around (keras-team/keras#20585,
# open; the TensorFlow multi-worker tutorial fails the same way).
MULTI_WORKER_UNSUPPORTED = (
    "The recipe cannot train under MultiWorkerMirroredStrategy: Keras {keras_version}'s "
    "model.fit fails under it with TensorFlow {tf_version} (keras-team/keras#20585, open). "
    "Across machines, use the course's training loop, which runs under it: "
    "helpers.loop.train_loop, or `python -m helpers.loop DATASET RUN_DIR` on every worker "
    "(notebook 08 writes it out). On one machine, MirroredStrategy uses all its GPUs "
    "(choose_strategy picks it)."
)


def check_supported(strategy: tf.distribute.Strategy) -> None:
    """Refuse a strategy the recipe cannot train under, before any data is read."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        import keras

        raise NotImplementedError(
            MULTI_WORKER_UNSUPPORTED.format(
                keras_version=keras.__version__, tf_version=tf.__version__
            )
        )


def shard_by_data(batches: tf.data.Dataset) -> tf.data.Dataset:
    """``batches`` with auto-sharding by data: each worker reads every file and keeps its share
    of the elements (``AutoShardPolicy.DATA``). Right for file lists every worker can read;
    sharding by file would give a worker nothing when there are fewer files than workers."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)
