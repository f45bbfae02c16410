"""The bisection's error rates in a seeded simulation: the command's own search, the
sequential gate's own looks and decisions, simulated pairs of runs
(bench.benchmarks.bisect_sim)."""

from bench.benchmarks.bisect_sim import Line, false_bad_rate, simulate


def test_a_20_percent_slowdown_is_named_at_its_commit_with_5_percent_run_noise():
    ends, mean_pairs = simulate(Line(commits=8, slowdown=1.2, run_sd=0.05), trials=200, seed=1)
    assert ends["named"] >= 185  # 92.5%
    assert ends["wrong"] <= 10
    assert mean_pairs < 40  # the reproduction and about log2(8) A/Bs of a few pairs


def test_without_a_slowdown_the_regression_does_not_reproduce():
    ends, _ = simulate(Line(commits=8, slowdown=1.0, run_sd=0.05), trials=200, seed=2)
    assert ends["not reproduced"] >= 190


def test_a_step_calls_an_unchanged_commit_bad_at_most_one_side_of_the_gates_95_percent():
    # A regression needs the gate's 95% group-sequential interval above 1 at some look:
    # at most 2.5% of A/A comparisons, whatever the spread (here 10%, a noisy runner).
    rate = false_bad_rate(Line(commits=1, run_sd=0.10), trials=4000, seed=3)
    assert rate <= 0.025 + 0.005  # two standard errors of 4,000 trials
