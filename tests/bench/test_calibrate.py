"""Calibrating the gate: sizing a slowdown as real work, the noise of a pair, the smallest
slowdown caught, and the command end to end on the tiny model."""

from __future__ import annotations

import json
import math
import types

import pytest

from bench.gate import calibrate
from bench.gate.calibrate import Sizing, Trial, pair_noise, smallest_caught
from bench.matrix.signals import StopRequest
from reports.regression import Verdict
from reports.sequential import LookSchedule
from tests.bench.test_cli import run_cli
from tests.conftest import learnable_arrays
from trainloop.config import Variant, Workload


def test_a_slowdown_is_sized_in_whole_units_of_work():
    sizing = Sizing(step_s=0.035, unit_s=0.0008)
    assert sizing.units(0.10) == 4 and sizing.actual(0.10) == pytest.approx(0.0914, abs=1e-3)
    assert sizing.units(0.001) == 1  # never nothing


def _trial(kind, ratios):
    verdict = Verdict("c", "no change", "", 1, 1, 3, 3, 1, 1, 1, math.nan, math.nan)
    return Trial(kind, 0, 0.0, verdict, len(ratios), 1.0, tuple(ratios))


def test_pair_noise_pools_the_aa_trials_around_their_own_means():
    trials = [_trial("A/A", [0.1, 0.3]), _trial("A/A", [-1.0, -1.2]), _trial("+10%", [5, 9])]
    assert pair_noise(trials) == pytest.approx(math.sqrt((0.02 + 0.02) / 2))
    assert math.isnan(pair_noise([_trial("A/A", [0.1])]))


def test_the_smallest_slowdown_caught_grows_with_the_noise():
    schedule = LookSchedule.every(2, 4, 20)
    quiet, noisy = smallest_caught(0.02, schedule, 0.1), smallest_caught(0.10, schedule, 0.1)
    assert quiet is not None and noisy is not None and quiet < noisy
    assert smallest_caught(5.0, schedule, 0.1) is None


def test_injected_work_runs_inside_every_step(monkeypatch):
    """Each call burns units x its steps, and the record says how many."""
    from tests.trainloop.test_step import Recorder
    from trainloop import loop as loop_module

    burned: list[int] = []
    monkeypatch.setattr(loop_module, "create_burner", lambda: burned.append)
    workload = Workload(
        model="tiny", epochs=1, steps_per_epoch=6, warmup_steps=1, eval_examples=0, batch_size=16
    )
    rec = Recorder()
    loop_module.TrainingLoop(
        Variant("function", steps_per_call=2), workload, learnable_arrays(), inject_work=3
    ).run(rec)
    assert burned == [6, 6, 6] and rec.info.injected_work_units == 3


def test_calibrate_end_to_end(tmp_path):
    out = tmp_path / "cal"
    result = run_cli(
        tmp_path,
        "calibrate",
        "--model",
        "tiny",
        "--steps-per-epoch",
        "20",
        "--batch-size",
        "16",
        "--aa",
        "1",
        "--ab",
        "1",
        "--slowdowns",
        "0.5",
        "--runs",
        "3",
        "--allow-dirty",
        "-o",
        str(out),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert "# sized quietly: a step takes" in result.stdout
    assert "A/A: " in result.stdout and "+50%: caught" in result.stdout
    doc = json.loads((out / "calibration.json").read_text())
    assert [t["kind"] for t in doc["trials"]] == ["A/A", "+50%"]
    assert all(t["pairs"] == 3 for t in doc["trials"])
    slowed = json.loads(
        next((out / "trial-01-slower50pct" / "candidate" / "runs").glob("*.json")).read_text()
    )
    assert slowed["run"]["info"]["injected_work_units"] >= 1


def test_a_trial_cut_short_by_ctrl_c_is_left_out(monkeypatch):
    # The trial running when the stop came ends "interrupted" or "candidate failed": that
    # is the interruption's verdict, not the gate's, and must not count as a missed catch.
    stop = StopRequest()
    ran: list[int] = []

    def fake_trial(kind, index, slowdown, units, setting):
        ran.append(index)
        if index == 1:
            stop.count = 1  # Ctrl-C arrives during the second trial
        return Trial(kind, index, slowdown, None, 1, 1.0, ())

    monkeypatch.setattr(calibrate, "run_trial", fake_trial)
    setting = types.SimpleNamespace(stop=stop)
    seen: list[Trial] = []
    trials = calibrate.run_trials(setting, Sizing(0.04, 0.001), 3, 3, [0.1], False, seen.append)
    assert ran == [0, 1] and [t.index for t in trials] == [0] and seen == trials
