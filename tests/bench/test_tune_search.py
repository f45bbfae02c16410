"""The search's logic on made-up evidence and seeded simulations: no processes."""

from __future__ import annotations

import math

import pytest

from bench.benchmarks.tune_search import FakeSpace, rates, reference_like, simulate, tie
from bench.tune.halving import Evidence, Rules, Search, beats_all, pooled_spread


def _ev(*medians: float, wall: float = 10.0) -> Evidence:
    return Evidence(tuple(medians), (wall,) * len(medians))


def _space() -> FakeSpace:
    return FakeSpace({"default": 0.033, "fit": 0.035, "a": 0.020, "b": 0.030, "c": 0.060})


def test_round_one_runs_every_configuration_and_the_baselines_three_times():
    search = Search(_space(), Rules(), budget_s=1000)
    assert search.propose({}, 0.0) == {"default": 3, "fit": 3, "a": 1, "b": 1, "c": 1}


def test_a_tight_first_round_measures_every_configuration_before_repeating_any():
    """Seven runs fit: one of each of the five, then the baselines' repeats in order."""
    search = Search(_space(), Rules(first_run_s=10), budget_s=75)
    assert search.propose({}, 0.0) == {"default": 3, "fit": 1, "a": 1, "b": 1, "c": 1}


def test_later_rounds_top_the_baselines_up_after_the_leaders():
    """fit got one run of its three in round 1; round 2 gives the leaders and the default
    their run and fit its two missing ones, as far as the 50 s left pay for."""
    search = Search(_space(), Rules(), budget_s=1000)
    search.propose({}, 0.0)
    evidence = {
        "default": _ev(0.033, 0.034, 0.032),
        "fit": _ev(0.035),
        "a": _ev(0.0200),
        "b": _ev(0.0210),
        "c": _ev(0.060),
    }
    assert search.propose(evidence, 950.0) == {"a": 1, "b": 1, "default": 1, "fit": 2}


def test_a_clearly_slower_configuration_is_cut_and_a_tie_is_kept():
    search = Search(_space(), Rules(), budget_s=1000)
    search.propose({}, 0.0)
    evidence = {
        "default": _ev(0.033, 0.034, 0.032),  # 3% run to run
        "fit": _ev(0.035, 0.036, 0.034),
        "a": _ev(0.0200),
        "b": _ev(0.0202),  # as fast as the best, within the noise
        "c": _ev(0.060),  # three times slower than the best
    }
    nxt = search.propose(evidence, 50.0)
    assert search.status["c"].state == "cut"
    assert "slower than the best" in search.status["c"].note
    assert search.status["b"].state == "live" and set(nxt) == {"a", "b"}


def test_a_broken_run_fails_its_configuration_with_the_reason():
    search = Search(_space(), Rules(), budget_s=1000)
    search.propose({}, 0.0)
    evidence = {"default": _ev(0.033, 0.034, 0.032), "c": Evidence((), (5.0,), "timeout: 60 s")}
    search.propose(evidence, 50.0)
    assert search.status["c"].state == "failed" and search.status["c"].note == "timeout: 60 s"


def test_pooled_spread_and_the_decision():
    sd, df = pooled_spread({"x": _ev(1.0, 1.0), "y": _ev(1.0, math.e**0.2)})
    assert df == 2 and sd == pytest.approx(math.sqrt(0.02 / 2))
    best = _ev(0.020, 0.0201, 0.0199, 0.0200)
    assert beats_all(best, [_ev(0.030, 0.0302, 0.0298, 0.0301)], 0.99)[0]
    assert not beats_all(best, [_ev(0.0201, 0.0199, 0.0202, 0.0198)], 0.99)[0]
    assert not beats_all(best, [_ev(0.030)], 0.99)[0]  # one run cannot be compared


def test_the_search_honours_its_budget_and_says_why_it_ended():
    """Runs cost a known time here, so the budget holds exactly."""
    for budget in (60, 200, 600):
        outcome = simulate(reference_like(0.10), 0.04, budget, 9.0, seed=1, gap=0.10)
        assert outcome.spent_s <= budget


def test_variations_of_the_leaders_then_their_combination():
    """Without noise every configuration but the best is cut at once, so the one leader
    gets its three variations; the two that beat it are combined, and the combination
    wins, decided."""
    space = FakeSpace(reference_like(0.10), (0.95, 0.97, 1.2))
    search = Search(space, Rules(first_run_s=1), budget_s=10_000)
    medians: dict = {}
    while wanted := search.propose({k: _ev(*m) for k, m in medians.items()}, 0.0):
        for key, runs in wanted.items():
            medians.setdefault(key, []).extend([space.times[key]] * runs)
    assert [v.cell for v in space.made] == ["best~0", "best~1", "best~2"]
    assert "best+best~0+best~1" in search.status
    assert search.ended == "decided"
    assert search.live({k: _ev(*m) for k, m in medians.items()}) == ["best+best~0+best~1"]


def test_simulated_searches_rarely_decide_a_tie_and_decide_a_clear_winner():
    """The error rate the Bonferroni levels promise, in seeded simulations of a space
    like the reference CNN's with 4% run-to-run noise and a 600 s budget."""
    clear = reference_like(0.10)
    won = [simulate(clear, 0.04, 600, 9.0, seed, 0.10) for seed in range(40)]
    tied = [simulate(tie(clear), 0.04, 600, 9.0, seed, 0.10) for seed in range(100)]
    assert rates(won)["decided_right"] >= 0.9 and rates(won)["decided_wrong"] == 0
    decided_in_tie = 1 - rates(tied)["undecided"]
    assert decided_in_tie <= 0.05
