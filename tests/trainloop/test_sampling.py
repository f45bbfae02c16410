"""Adaptive sampling within a run: the stop rule, and the loop honouring it."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats as sps

from tests.trainloop.test_step import Recorder
from trainloop.config import Variant, Workload
from trainloop.loop import TrainingLoop
from trainloop.sampling import StopRule, median_precision


def test_the_median_interval_is_the_binomial_order_statistics_one():
    x = list(np.random.default_rng(0).lognormal(0, 0.1, 101))
    got = median_precision(x)
    # scipy's distribution-free interval of the median (quantile test inversion)
    ci = sps.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
    assert got == pytest.approx((ci.high - ci.low) / (2 * np.median(x)), rel=0.15)
    assert median_precision([1.0] * 5) == math.inf  # too few samples for any interval
    assert median_precision([1.0] * 30) == 0.0


def _feed(rule: StopRule, samples, phase="timed"):
    for s in samples:
        rule.observe(s, 1, phase)


def test_stops_once_precise_but_not_below_the_floor():
    rule = StopRule(precision=0.05, min_timed_steps=20)
    _feed(rule, [1.0] * 10)
    assert not rule.should_stop()  # precise already, but under the floor
    _feed(rule, [1.0] * 10)
    assert rule.should_stop() and rule.reason == "precision"


def test_warmup_calls_do_not_count():
    rule = StopRule(precision=0.05, min_timed_steps=5)
    _feed(rule, [1.0] * 50, phase="warmup")
    assert not rule.should_stop() and rule.timed_steps == 0


def test_stops_at_the_deadline_with_what_it_has():
    rule = StopRule(precision=0.001, deadline=time.monotonic() - 1, min_timed_steps=3)
    _feed(rule, [1.0, 2.0])
    assert not rule.should_stop()  # the floor comes first, even past the deadline
    _feed(rule, [3.0, 1.5, 2.5, 1.2])
    assert rule.should_stop() and rule.reason == "budget"
    summary = rule.summary()
    assert summary["stopped_by"] == "budget" and summary["precision"] > 0.001


def test_noisy_steps_keep_the_run_going():
    rng = np.random.default_rng(1)
    rule = StopRule(precision=0.01, min_timed_steps=5)
    _feed(rule, rng.lognormal(0, 0.3, 40))
    assert not rule.should_stop() and rule.summary()["stopped_by"] == "plan"


def test_the_loop_stops_when_the_rule_says(learnable):
    rule = StopRule(precision=0.9, min_timed_steps=6)  # loose: met at the floor
    workload = Workload(
        model="tiny", epochs=3, steps_per_epoch=40, warmup_steps=2, eval_examples=0, batch_size=16
    )
    rec = Recorder()
    TrainingLoop(Variant("function"), workload, learnable, stop_rule=rule).run(rec)
    assert rule.reason == "precision"
    timed = [p for p in rec.phases if p == "timed"]
    assert len(timed) == 6 and len(rec.epochs) == 1  # no later epoch starts
    assert rec.epochs[0].train_examples == (1 + 2 + 6) * 16


def test_fit_stops_when_the_rule_says(learnable):
    rule = StopRule(deadline=time.monotonic(), min_timed_steps=4)  # out of time at once
    workload = Workload(
        model="tiny", epochs=2, steps_per_epoch=30, warmup_steps=1, eval_examples=0, batch_size=16
    )
    rec = Recorder()
    TrainingLoop(Variant("fit"), workload, learnable, stop_rule=rule).run(rec)
    assert rule.reason == "budget"
    assert [p for p in rec.phases].count("timed") == 4 and len(rec.epochs) == 1
