"""Profiling passes: real traces of the tiny model, summarised without a UI (an eager
step's ops and the time between them included), and served on loopback only."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reports.load import load_results
from reports.markdown import timing_markdown
from reports.report import build_report
from tests.bench.serving import fetch_runs, is_loopback, listening
from tests.bench.test_cli import FIXED, run_cli
from tests.conftest import subprocess_env, tapebench_cmd

ARGS = [
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
    "10",
    "--warmup-steps",
    "2",
    "--eval-examples",
    "0",
    "--variants",
    "eager,function,xla,fit",
    "--profile",
    "4:7",
]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("profiled")
    result = run_cli(tmp, "run", *ARGS, "-o", str(tmp / "out"))
    assert result.returncode == 0, result.stderr
    return tmp / "out", result


def test_a_profiling_pass_per_cell_in_the_xprof_layout(profiled):
    out, result = profiled
    sessions = sorted((out / "traces" / "plugins" / "profile").iterdir())
    assert [s.name.split("_")[0] for s in sessions] == [
        "eager-float32-cpu",
        "fit-float32-cpu",
        "function-float32-cpu",
        "xla-float32-cpu",
    ]
    for session in sessions:
        assert list(session.glob("*.xplane.pb")), f"no trace in {session}"
    results = load_results([out])
    profile_runs = [r for r in results.records if r.purpose == "profile"]
    assert len(profile_runs) == 4
    for run in profile_runs:
        assert run.status == "ok" and run.info["trace"].startswith("traces/plugins/profile/")
        assert list(run.steps.phase) == [
            "first",
            "warmup",
            "warmup",
            "timed",
            "profiled",
            "profiled",
            "profiled",
        ]  # stops after the window
    # Profiling runs stay out of the timing statistics: 10 steps - first - 2 warm-up.
    assert "| 7 (1) |" in result.stdout


def test_the_trace_is_summarised_without_a_ui(profiled):
    out, _ = profiled
    report = build_report(load_results([out]))
    by_variant = {p.variant: p for p in report.profiles}
    assert set(by_variant) == {
        "eager/float32@cpu",
        "function/float32@cpu",
        "xla/float32@cpu",
        "fit/float32@cpu",
    }
    function = by_variant["function/float32@cpu"]
    assert len(function.top_ops) > 0 and function.steps == 3
    assert function.top_ops["type"].str.contains("Conv2D|MatMul").any()
    assert "convolution" in set(function.categories["category"])
    assert function.profiler_step_ms > 0 and function.harness_step_ms > 0
    xla = by_variant["xla/float32@cpu"]
    assert xla.top_ops.iloc[0]["category"] == "XLA cluster"
    assert any("one compiled cluster" in n for n in xla.notes)
    # Keras fit is traced too (a callback starts, marks and stops the profiler).
    fit = by_variant["fit/float32@cpu"]
    assert fit.steps == 3 and fit.top_ops["type"].str.contains("Conv2D|MatMul").any()
    text = timing_markdown(report)
    assert "**Profiles**" in text and "profiler step time" in text


def test_an_eager_step_is_its_ops_and_the_time_between_them(profiled):
    out, _ = profiled
    results = load_results([out])
    report = build_report(results)
    summary = {p.variant: p for p in report.profiles}["eager/float32@cpu"]
    e = summary.eager
    assert e is not None and e.steps == summary.steps == 3
    # The step's own operations, one by one: the tiny model's convolution and dense
    # layers forward and backward, among hundreds of small ops per step.
    types = set(e.ops["type"])
    assert {"Conv2D", "Conv2DBackpropFilter", "MatMul"} <= types, types
    assert e.ops_per_step > 100
    assert e.ops["total_ms"].sum() / e.steps == pytest.approx(e.op_ms)
    assert 0 < e.kernel_ms <= e.op_ms
    assert e.op_ms > 0 and e.dispatch_ms > 0 and e.python_ms > 0
    # Ops, dispatch and Python account for the step as the harness timed it: the same
    # steps' wall time, less the batch fetch that precedes each step's marker.
    steps = results.steps
    mine = steps[(steps["run_id"] == summary.run_id) & (steps["phase"] == "profiled")]
    harness_ms = (mine["seconds"] - mine["input_seconds"]).sum() * 1e3
    traced_ms = (e.op_ms + e.dispatch_ms + e.python_ms) * e.steps
    assert traced_ms == pytest.approx(harness_ms, rel=0.05)
    categories = summary.categories.set_index("category")["share"].to_dict()
    assert {"convolution", "matmul", "Python between ops"} <= set(categories)
    assert sum(categories.values()) == pytest.approx(1.0)
    assert summary.share_of == "step time"
    text = timing_markdown(report)
    assert "Share of step time" in text and "between consecutive operations" in text


def _server_url(log: Path, server: subprocess.Popen, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        found = re.search(r"http://[^ ]+/", log.read_text())
        if found:
            return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no URL from the server (exit {server.poll()})")


def test_tapebench_traces_serves_the_runs_on_loopback_only(profiled, tmp_path):
    out, _ = profiled
    log = tmp_path / "stdout"
    with log.open("w") as stdout, (tmp_path / "stderr").open("w") as stderr:
        server = subprocess.Popen(
            tapebench_cmd("traces", str(out), "--port", "0"),
            stdout=stdout,
            stderr=stderr,
            env=subprocess_env(tmp_path),
        )
    try:
        url = _server_url(log, server, 120)
        runs = fetch_runs(url, 60, lambda: server.poll() is None)
        addresses = listening(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed"
    assert url.startswith("http://127.0.0.1:")
    assert addresses, "the server listens on nothing"
    assert all(is_loopback(host) for host, _ in addresses), addresses
    assert int(url.rstrip("/").rsplit(":", 1)[1]) in {port for _, port in addresses}
    sessions = {s.name for s in (out / "traces" / "plugins" / "profile").iterdir()}
    assert runs is not None and set(runs) == sessions, runs
    assert code == 0, (tmp_path / "stderr").read_text()[-2000:]


def test_tapebench_traces_without_traces_is_one_line_and_exit_2(tmp_path):
    result = run_cli(tmp_path, "traces", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tapebench: error: {tmp_path / 'nowhere'}: no such directory"
    ]
    (tmp_path / "empty").mkdir()
    result = run_cli(tmp_path, "traces", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tapebench: error: {tmp_path / 'empty'}: no traces in "
        f"{tmp_path / 'empty' / 'traces' / 'plugins' / 'profile'} (record them with "
        "tapebench run --profile FIRST:LAST -o RESULTS_DIR)"
    ]


def _can_unshare() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -n (root) and iproute2")
def test_xprof_serves_every_interface_so_it_runs_in_a_namespace_here(profiled):
    out, _ = profiled
    xprof = Path(sys.executable).with_name("xprof")
    if not xprof.exists():
        pytest.skip("xprof is not installed")
    helper = Path(__file__).with_name("xprof_in_netns.py")
    # xprof binds every address plus a gRPC port and has no host option: a network
    # namespace of our own keeps it off every real interface.
    script = f"ip link set lo up && exec {sys.executable} {helper} {xprof} {out / 'traces'} 6006"
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["runs"], result
    assert any(name.startswith("function-float32-cpu") for name in result["runs"])
    assert result["exit"] != "killed"
    # What the README warns of: the UI and the gRPC worker listen beyond loopback.
    exposed = {port for host, port in result["listening"] if not is_loopback(host)}
    assert {6006, 50051} <= exposed, result["listening"]
