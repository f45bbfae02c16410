"""The matrix runner under crashes, signals, resumes and concurrent invocations.

Each test drives the real command in a subprocess, with the tiny model on synthetic data.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from reports.load import load_records
from tests.bench.test_cli import FIXED, run_cli
from tests.conftest import learnable_arrays, subprocess_env, tapebench_cmd, write_npz

# Eager tiny steps take ~60 ms here: 150 of them keep a worker busy for ~10 s.
SLOW = [
    *FIXED,
    "--model",
    "tiny",
    "--dataset",
    "synthetic",
    "--devices",
    "cpu",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "150",
    "--eval-examples",
    "0",
    "--warmup-steps",
    "2",
    "--batch-size",
    "32",
]
QUICK = [
    *FIXED,
    "--model",
    "tiny",
    "--dataset",
    "synthetic",
    "--devices",
    "cpu",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "4",
    "--eval-examples",
    "32",
    "--warmup-steps",
    "1",
    "--batch-size",
    "16",
]


def start_cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        tapebench_cmd(*args),
        env=subprocess_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_training(out: Path, slot: str, timeout: float = 120) -> int:
    """Waits until the worker of ``slot`` (e.g. ``c01-r0``) has trained a step; its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in (out / "logs").glob(f"*-{slot}.log"):
            text = log.read_text()
            if "first step took" in text:
                return int(re.search(r"tapebench worker: pid (\d+)", text).group(1))
        time.sleep(0.2)
    raise AssertionError(f"the worker of {slot} never started training")


def by_slot(out: Path) -> dict[str, list]:
    """Records by the end of their slot id (``c01-r0``), oldest attempt first."""
    slots: dict[str, list] = {}
    for r in sorted(load_records([out]), key=lambda r: r.started_at):
        slots.setdefault(
            r.slot_id.rsplit("-", 2)[-2] + "-" + r.slot_id.rsplit("-", 1)[-1], []
        ).append(r)
    return slots


def test_repeats_run_interleaved_and_pool(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        tmp_path, "run", *QUICK, "--variants", "eager,function", "--repeats", "2", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    order = re.findall(r"\] (\w+)/float32@cpu [^#]+ #(\d): ok", result.stderr)
    assert order[:4] == [("eager", "1"), ("function", "1"), ("eager", "2"), ("function", "2")]
    manifest = json.loads(next((out / "invocations").glob("*.json")).read_text())
    assert [s["slot_id"][-6:] for s in manifest["slots"]] == [
        "c00-r0",
        "c01-r0",
        "c00-r1",
        "c01-r1",
    ]
    assert manifest["state"] == "complete"
    records = load_records([out])
    assert sorted((r.cell["mode"], r.repeat) for r in records) == [
        ("eager", 0),
        ("eager", 1),
        ("function", 0),
        ("function", 1),
    ]
    assert len({r.fingerprint["hostname"] for r in records}) == 1
    # Two runs of 2 timed steps each, pooled into one row per cell.
    assert "| 4 (2) |" in result.stdout and result.stdout.count("| eager/float32@cpu | ok |") == 1


def test_a_killed_worker_fails_its_run_only(tmp_path):
    out = tmp_path / "out"
    proc = start_cli(
        tmp_path, "run", *SLOW, "--variants", "eager,eager/mixed_bfloat16,function", "-o", str(out)
    )
    os.kill(wait_for_training(out, "c01-r0"), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # a failed run
    slots = by_slot(out)
    (killed,) = slots["c01-r0"]
    assert killed.status == "failed"
    assert "killed by SIGKILL" in killed.reason
    for slot in ("c00-r0", "c02-r0"):
        (record,) = slots[slot]
        assert record.status == "ok" and len(record.steps) == 150
    assert "| eager/mixed_bfloat16@cpu | failed: worker killed by SIGKILL" in stdout


def test_sigint_keeps_finished_runs_and_resume_finishes_the_rest(tmp_path):
    out = tmp_path / "out"
    proc = start_cli(tmp_path, "run", *SLOW, "--variants", "eager,function,xla", "-o", str(out))
    wait_for_training(out, "c01-r0")
    first_file = next((out / "runs").glob("*-c00-r0.json"))
    first_bytes = first_file.read_bytes()
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "stopped by SIGINT" in stderr and "--resume" in stderr
    slots = by_slot(out)  # every file parses
    assert slots["c00-r0"][0].status == "ok"
    (interrupted,) = slots["c01-r0"]
    assert interrupted.status == "interrupted" and 0 < len(interrupted.steps) < 150
    assert "c02-r0" not in slots
    assert not list(out.rglob("*.tmp"))

    resumed = run_cli(tmp_path, "run", "--resume", "-o", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "2 run(s) recorded" in resumed.stderr
    slots = by_slot(out)
    assert first_file.read_bytes() == first_bytes  # finished runs are not redone
    assert [r.status for r in slots["c01-r0"]] == ["interrupted", "ok"]
    assert slots["c01-r0"][1].run_id.endswith("-c01-r0-a2")
    assert slots["c02-r0"][0].status == "ok"
    for mode in ("eager", "function", "xla"):
        assert f"| {mode}/float32@cpu | ok |" in resumed.stdout
    again = run_cli(tmp_path, "run", "--resume", "-o", str(out))
    assert again.returncode == 0 and "0 run(s) recorded" in again.stderr


def test_resume_refuses_a_running_invocation_and_extra_options(tmp_path):
    out = tmp_path / "out"
    assert (
        run_cli(tmp_path, "run", *QUICK, "--variants", "function", "-o", str(out)).returncode == 0
    )
    manifest = next((out / "invocations").glob("*.json"))
    with open(manifest.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = run_cli(tmp_path, "run", "--resume", "-o", str(out))
    assert busy.returncode == 2 and "is running in another tapebench process" in busy.stderr
    mixed = run_cli(tmp_path, "run", "--resume", "--epochs", "3", "-o", str(out))
    assert mixed.returncode == 2 and "drop --epochs" in mixed.stderr
    unknown = run_cli(tmp_path, "run", "--resume", "nope", "-o", str(out))
    assert unknown.returncode == 2 and "no invocation nope" in unknown.stderr


def test_a_truncated_run_file_is_reported_by_name(tmp_path):
    out = tmp_path / "out"
    assert (
        run_cli(tmp_path, "run", *QUICK, "--variants", "function", "-o", str(out)).returncode == 0
    )
    run_file = next((out / "runs").glob("*.json"))
    run_file.write_bytes(run_file.read_bytes()[:100])
    result = run_cli(tmp_path, "run", "--resume", "-o", str(out))
    assert result.returncode == 2
    assert f"{run_file.name}: corrupt or truncated JSON" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_divergence_timeout_and_bad_data_are_results_not_crashes(tmp_path, mnist_dir):
    out = tmp_path / "out"
    diverged = run_cli(
        tmp_path, "run", *QUICK, "--variants", "function", "--learning-rate", "1e30", "-o", str(out)
    )
    assert diverged.returncode == 0, diverged.stderr
    assert "| function/float32@cpu | diverged: loss became nan" in diverged.stdout

    timed_out = run_cli(
        tmp_path,
        "run",
        *SLOW,
        "--steps-per-epoch",
        "2000",
        "--variants",
        "eager",
        "--timeout",
        "12",
        "-o",
        str(out),
    )
    assert timed_out.returncode == 0, timed_out.stderr
    record = next(r for r in load_records([out]) if r.status == "timeout")
    assert 0 < len(record.steps) < 2000 and record.wall_seconds < 40
    assert (
        "timeout: exceeded the 12 s run timeout (figures from the steps it finished)"
        in timed_out.stdout
    )

    # The parent finds the files by name; the worker reads them and finds one damaged.
    (mnist_dir / "train-images-idx3-ubyte.gz").write_bytes(bytes.fromhex("00000803 0000000000"))
    broken = run_cli(
        tmp_path,
        "run",
        *QUICK,
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--variants",
        "eager,function",
        "-o",
        str(out),
    )
    # The parent reads the headers before it plans: damage there is bad input, refused
    # before anything runs (damage past the header is a worker's finding: test_bad_input).
    assert broken.returncode == 2
    assert "train-images-idx3-ubyte.gz: not gzip data" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1 and not broken.stdout


def test_concurrent_invocations_into_one_directory_stay_separate(tmp_path):
    out = tmp_path / "out"
    procs = [
        start_cli(tmp_path, "run", *QUICK, "--variants", v, "-o", str(out))
        for v in ("function", "eager")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    manifests = [json.loads(p.read_text()) for p in (out / "invocations").glob("*.json")]
    assert len(manifests) == 2 and {m["state"] for m in manifests} == {"complete"}
    records = load_records([out])
    assert len(records) == 2
    assert {r.invocation_id for r in records} == {m["invocation_id"] for m in manifests}
    assert {r.cell["mode"] for r in records} == {"function", "eager"}


def test_matrix_file_axes_and_threads(tmp_path):
    matrix = tmp_path / "nightly.toml"
    matrix.write_text(
        'variants = ["function"]\ndevices = ["cpu"]\nmodels = ["tiny"]\n'
        'dataset = "synthetic"\nbatch-sizes = [8, 16]\nepochs = 1\nsteps_per_epoch = 3\n'
        "eval_examples = 0\nwarmup_steps = 1\nintra_op_threads = 1\ninter_op_threads = 1\n"
    )
    out = tmp_path / "out"
    result = run_cli(
        tmp_path, "run", *FIXED, "--matrix", str(matrix), "--batch-sizes", "8,16,24", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    records = load_records([out])
    assert sorted(r.cell["batch_size"] for r in records) == [8, 16, 24]  # the flag wins
    assert {
        (r.fingerprint["intra_op_threads"], r.fingerprint["inter_op_threads"]) for r in records
    } == {(1, 1)}
    assert result.stdout.count("**tiny model on synthetic, batch") == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("modez = ['eager']\n", "unknown key 'modez'"),
        ("epochs = 0\n", "epochs = 0: '0' is not an integer >= 1"),
        ("preset = 'huge'\n", 'preset = "huge": expected one of gate, quick, reference'),
        ("keep_partial_batch = 'yes'\n", "expected true or false"),
        ("epochs = [\n", "not valid TOML"),
    ],
)
def test_bad_matrix_files_exit_2_with_one_line(tmp_path, content, message):
    matrix = tmp_path / "m.toml"
    matrix.write_text(content)
    result = run_cli(
        tmp_path, "run", "--matrix", str(matrix), "-o", str(tmp_path / "out"), timeout=60
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert str(matrix) in result.stderr
    assert not (tmp_path / "out").exists()


def test_list_shows_what_this_machine_has(tmp_path):
    result = run_cli(tmp_path, "list", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "modes:       eager, function, xla" in out
    assert "synthetic: generated" in out
    assert re.search(r"gpu: (none visible|\S+)", out)
    assert "TensorFlow 2." in out


def test_list_says_what_a_data_dir_holds_and_what_it_lacks(tmp_path):
    write_npz(tmp_path / "data" / "mnist.npz", learnable_arrays(200, 100))
    result = run_cli(tmp_path, "list", "--data-dir", str(tmp_path / "data"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(data-dir, 200 train / 100 test examples)" in result.stdout
    assert f"fashion_mnist: not in {tmp_path / 'data'} (run refuses it" in result.stdout
