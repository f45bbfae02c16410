"""The ranking's figures, the recommendation's rule and the commands tune prints: made-up
runs, no processes."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import numpy as np
import pytest

from bench.cli import create_parser
from bench.cli.planning import build_cells
from bench.matrix.cells import Cell, RunSettings
from bench.tune.guard import GuardSpec, Verdict
from bench.tune.output import recommendation, why_not
from bench.tune.pipeline import TuneOptions, TuneReport, _recommend
from bench.tune.ranking import Interval, Row, config_label, run_command, speedup, step_time
from bench.tune.space import Machine
from trainloop.config import Variant, Workload

WORKLOAD = Workload(model="tiny", dataset="synthetic", batch_size=32, epochs=1)
DEFAULT = Cell(Variant("function"), WORKLOAD)


def _run(median: float, n: int = 200, seed: int = 0) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(median * np.exp(rng.normal(0, 0.02, n)))


@pytest.mark.parametrize("runs", [1, 3])
def test_a_speedup_lies_within_its_own_interval(runs):
    """Four baseline runs at 10, 10, 10 and 20 ms: their geometric mean (11.9 ms) is far
    from their pooled median (10 ms). Against one run the interval is the bootstrap of
    the pooled steps, so the speedup must be the ratio of pooled medians too."""
    baseline = [_run(m, seed=i) for i, m in enumerate((0.010, 0.010, 0.010, 0.020))]
    mine = [_run(0.010, seed=10 + i) for i in range(runs)]
    found = speedup(baseline, mine)
    assert found is not None and found.low <= found.value <= found.high
    assert found.within_run == (runs == 1)
    step = step_time(mine)
    assert step is not None and step.low <= step.value <= step.high


def _row(cell: Cell, low: float, runs: int = 3, state: str = "live") -> Row:
    vs = Interval((low + 0.1), low, low + 0.2, within_run=runs < 2)
    return Row(cell, state, "", runs, Interval(0.01, 0.009, 0.011), vs, vs, None)


def _verdict(cell: Cell, passed: bool) -> Verdict:
    return Verdict(cell, "ok", 0.9 if passed else 0.5, 2000, passed, "a note")


FAST = Cell(Variant("function", steps_per_call=10), WORKLOAD)
FASTER = dataclasses.replace(FAST, settings=RunSettings.create(TF_ENABLE_ONEDNN_OPTS="0"))
ONE_RUN = Cell(Variant("function", input_mode="staged"), WORKLOAD)


def test_the_recommendation_is_the_fastest_shown_faster_that_passes_the_guard():
    rows = [_row(FASTER, 1.5), _row(ONE_RUN, 1.4, runs=1), _row(FAST, 1.2), _row(DEFAULT, 0.9)]
    verdicts = [_verdict(DEFAULT, True), _verdict(FASTER, False), _verdict(FAST, True)]
    assert _recommend(rows, verdicts, DEFAULT) == FAST
    # without a guard, float32 only: the fastest that is shown faster
    assert _recommend(rows, [], DEFAULT) == FASTER
    # nothing shown faster: the default
    assert _recommend([_row(FAST, 0.95), _row(DEFAULT, 0.9)], verdicts, DEFAULT) == DEFAULT


def _report(rows: list[Row], verdicts: list[Verdict], recommended: Cell) -> TuneReport:
    options = TuneOptions(WORKLOAD, Path("out"), guard=GuardSpec("mnist", 1))
    machine = Machine("x86_64", 2, frozenset())
    return TuneReport(
        options, DEFAULT, machine, (), tuple(rows), "budget", 60.0, {"search": "x"},
        verdicts=tuple(verdicts), recommended=recommended,
    )  # fmt: skip


def test_a_faster_configuration_that_learns_worse_is_shown_with_the_reason():
    rows = [_row(FASTER, 1.5), _row(FAST, 1.2), _row(DEFAULT, 0.9)]
    verdicts = [_verdict(DEFAULT, True), _verdict(FASTER, False), _verdict(FAST, True)]
    report = _report(rows, verdicts, FAST)
    assert "**fails**: a note" in why_not(report, rows[0])
    text = "\n".join(recommendation(report))
    assert "**Recommended: `function:10/float32 tiny`**" in text
    assert f"The fastest by median, `{config_label(FASTER)}`, is not recommended" in text
    assert "is not recommended: **fails**" in text


def test_a_configuration_measured_once_is_not_recommended_and_says_why():
    rows = [_row(ONE_RUN, 1.4, runs=1), _row(DEFAULT, 0.9)]
    report = _report(rows, [_verdict(DEFAULT, True)], DEFAULT)
    assert "from one run" in why_not(report, rows[0])
    text = "\n".join(recommendation(report))
    assert "That is the default" in text


def _parsed(command: str) -> tuple[dict[str, str], Cell, object]:
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    args = create_parser().parse_args(words[len(env) + 1 :])
    (cell,) = build_cells(args)
    return env, cell, args


def test_the_printed_command_runs_the_configuration():
    """The winner's command line, read back by `tapebench run`'s own parser, names the
    same variant and workload, and carries its environment and threads."""
    tuned = Cell(
        Variant("function", "mixed_bfloat16", steps_per_call=10),
        WORKLOAD.replace(seed=3, learning_rate=0.01),
        RunSettings.create(2, 1, TF_XLA_FLAGS="--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"),
    )
    env, cell, args = _parsed(run_command(tuned, "-o", "x"))
    assert env == dict(tuned.settings.env)
    assert cell.variant == tuned.variant
    for name in ("model", "dataset", "batch_size", "seed", "learning_rate"):
        assert getattr(cell.workload, name) == getattr(tuned.workload, name)
    assert (args.intra_op_threads, args.inter_op_threads) == (2, 1)
