"""The gate's error rates, by seeded simulation of whole experiments (the two-level noise
of :mod:`reports.coverage`): 5 runs per side, 100 timed steps a run."""

import pytest

from reports.coverage import Scenario, gate_verdicts
from reports.regression import GatePolicy

TRIALS = 300


@pytest.mark.parametrize("run_sd", [0.02, 0.05, 0.10])
def test_a_a_false_alarms_stay_below_alpha(run_sd):
    verdicts = gate_verdicts(Scenario(5, run_sd), 1.0, TRIALS, seed=11)
    assert verdicts.count("regression") / TRIALS <= GatePolicy().alpha


def test_a_20_percent_slowdown_is_caught_with_5_runs_a_side():
    # At a 5% run-to-run sd; at 10% the rate falls to about 78% (the coverage benchmark
    # prints both).
    verdicts = gate_verdicts(Scenario(5, 0.05), 1.2, TRIALS, seed=12)
    assert verdicts.count("regression") / TRIALS >= 0.95
    assert "improvement" not in verdicts and "no change" not in verdicts
