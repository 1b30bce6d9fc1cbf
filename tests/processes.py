"""Fresh Python processes for the tests that need TensorFlow configured before it starts
(logical devices, a multi-worker cluster): started in their own process group, waited for with
a timeout, and never left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from helpers import REPO_ROOT

TIMEOUT_S = 300


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``python ARGS...`` in the repository, with ``env`` added to this process's."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: killed whole on a timeout
    )


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the process's group (a no-op when it has ended)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def outputs(processes: list[subprocess.Popen]) -> list[str]:
    """Wait for every process (TIMEOUT_S each) and return their outputs; on a timeout, kill
    every process group and fail."""
    texts = []
    try:
        for process in processes:
            texts.append(process.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        pytest.fail(f"a distributed job ran past {TIMEOUT_S} s and was stopped")
    finally:
        for process in processes:
            kill(process)
    return texts


def last_json(processes: list[subprocess.Popen], prefix: str = "") -> list[dict]:
    """The last line of JSON (after ``prefix``) each process printed; fails with the output of
    a process that failed."""
    results = []
    for process, output in zip(processes, outputs(processes), strict=True):
        assert process.returncode == 0, output[-4000:]
        lines = [line for line in output.splitlines() if line.startswith(prefix + "{")]
        assert lines, output[-4000:]
        results.append(json.loads(lines[-1].removeprefix(prefix)))
    return results


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on the loopback interface now."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def cluster_env(count: int) -> list[dict[str, str]]:
    """The ``TF_CONFIG`` of each worker of a ``count``-worker cluster on the loopback."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [
        {"TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": task})}
        for task in ({"type": "worker", "index": index} for index in range(count))
    ]
