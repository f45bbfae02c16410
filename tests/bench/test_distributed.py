"""tf.distribute: mirrored over logical CPU devices, and multi-worker clusters on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

from reports.load import load_records
from tests.bench.test_cli import FIXED, run_cli
from tests.bench.test_matrix import start_cli
from tests.conftest import ROOT, subprocess_env

TINY = [
    *FIXED,
    "--model",
    "tiny",
    "--dataset",
    "synthetic",
    "--devices",
    "cpu",
    "--epochs",
    "1",
    "--warmup-steps",
    "1",
    "--eval-examples",
    "64",
    "--batch-size",
    "32",
]


def _losses(record) -> np.ndarray:
    return np.array(record.steps.loss, dtype=float)


def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path, mnist_dir):
    out = tmp_path / "out"
    args = [a if a != "synthetic" else "mnist" for a in TINY]  # learnable labels
    result = run_cli(
        tmp_path,
        "run",
        *args,
        "--data-dir",
        str(mnist_dir),
        "--steps-per-epoch",
        "16",
        "--learning-rate",
        "3e-3",
        "--variants",
        "function,function*mirrored:2",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    records = {r.variant_name: r for r in load_records([out])}
    single, mirrored = records["function/float32@cpu"], records["function/float32@cpu*mirrored:2"]
    assert mirrored.status == "ok", mirrored.reason
    assert "mirrored over 2 cpu replicas" in mirrored.info["device"]
    # Learnable labels: the loss falls fast (from ~2.3), so updates that went astray would
    # show; random labels would leave it flat whatever the updates. The same global batch
    # of 32, split 16 + 16; the step divides each replica's loss by the global batch and
    # the strategy sums gradients, so the update is the single device's -- except that
    # BatchNorm normalises each replica's half batch with its own statistics: the losses
    # agree to a fraction of a percent (observed <= 0.5%), not to rounding (see README).
    single_losses, mirrored_losses = _losses(single), _losses(mirrored)
    assert single_losses[-3:].mean() < 0.5 * single_losses[:3].mean()
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=0.02)
    assert "| function/float32@cpu*mirrored:2 | 2 | 16 |" in result.stdout  # scaling table


def test_a_mirrored_step_applies_the_single_device_gradient(tmp_path):
    # Adam is invariant to a constant factor on its gradients, so losses alone cannot show
    # a gradient scaled by the number of replicas; the gradient Adam applied can.
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.mirrored_step"],
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path),
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    np.testing.assert_allclose(out["mirrored_loss"], out["single_loss"], rtol=1e-5)
    for mirrored, single in zip(out["mirrored"], out["single"], strict=True):
        single = np.asarray(single)
        np.testing.assert_allclose(mirrored, single, rtol=1e-3, atol=1e-4 * np.abs(single).max())


def test_two_workers_on_loopback_train_and_merge(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        tmp_path,
        "run",
        *TINY,
        "--steps-per-epoch",
        "6",
        "--variants",
        "function*multiworker:2",
        "--timeout",
        "300",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    (record,) = load_records([out])
    assert record.status == "ok", record.reason
    workers = record.info["workers"]
    assert [w["index"] for w in workers] == [0, 1]
    assert all(w["status"] == "ok" for w in workers)
    assert record.peak_rss_bytes == sum(w["peak_rss_bytes"] for w in workers)
    assert len(record.steps) == 6 and np.isfinite(_losses(record)).all()
    assert all(os.path.exists(w["log_file"]) for w in workers)
    assert all(c.startswith("127.0.0.1:") for c in record.info["cluster"])


def test_a_dead_worker_fails_the_run_quickly(tmp_path):
    out = tmp_path / "out"
    proc = start_cli(
        tmp_path,
        "run",
        *TINY,
        "--steps-per-epoch",
        "400",
        "--variants",
        "function*multiworker:2",
        "--timeout",
        "600",
        "-o",
        str(out),
    )
    deadline = time.monotonic() + 180
    pid = None
    while pid is None and time.monotonic() < deadline:
        for log in (out / "logs").glob("*-w1.log") if (out / "logs").is_dir() else []:
            text = log.read_text()
            if "first step took" in text:
                pid = int(re.search(r"tapebench worker: pid (\d+)", text).group(1))
        time.sleep(0.2)
    assert pid is not None, "worker 1 never started training"
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60  # not the 600 s timeout, not a hang
    assert proc.returncode == 1, stderr
    (record,) = load_records([out])
    assert record.status == "failed"
    assert "worker 1 of 2" in record.reason and "SIGKILL" in record.reason


def test_one_worker_per_machine_with_an_explicit_cluster(tmp_path):
    from bench.matrix.multiworker import free_ports

    cluster = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    procs = [
        start_cli(
            tmp_path,
            "run",
            *TINY,
            "--steps-per-epoch",
            "4",
            "--variants",
            "function*multiworker:2",
            "--cluster",
            cluster,
            "--task-index",
            str(i),
            "--timeout",
            "300",
            "-o",
            str(tmp_path / f"machine{i}"),
        )
        for i in (0, 1)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    for i in (0, 1):
        (record,) = load_records([tmp_path / f"machine{i}"])
        assert record.status == "ok", record.reason
        assert [w["index"] for w in record.info["workers"]] == [i]
        assert record.info["cluster"] == cluster.split(",")


def test_a_cluster_that_does_not_match_the_replicas_is_refused(tmp_path):
    result = run_cli(
        tmp_path,
        "run",
        *TINY,
        "--variants",
        "function*multiworker:2",
        "--cluster",
        "127.0.0.1:1",
        "-o",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2 and "at least two HOST:PORT" in result.stderr


def test_a_cluster_needs_multiworker_cells_of_its_size(tmp_path):
    result = run_cli(
        tmp_path,
        "run",
        *TINY,
        "--variants",
        "function*mirrored:2",
        "--cluster",
        "127.0.0.1:1,127.0.0.1:2",
        "-o",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2
    assert "*multiworker:2 (got function/float32@cpu*mirrored:2)" in result.stderr
    assert not (tmp_path / "out").exists()
