"""Does ``tapebench tune``'s search decide correctly? Seeded simulated searches.

    python -m bench.benchmarks.tune_search [--searches 200] [--noise 0.04] [--budget 600]

Each simulated search runs :class:`bench.tune.halving.Search` over a space shaped like the
reference CNN's on a 2-core machine -- 16 core configurations and the ``fit`` baseline,
then variations of the leaders and their combination -- whose true median step times are
fixed, measuring each run as the true time times log-normal run-to-run noise (``--noise``
0.04: what per-run medians of one cell vary by on a shared 2-core machine) and costing
``--run-s`` seconds of the budget. Three cases:

* ``clear``: the fastest configuration is ``--gap`` faster than the next one: how often
  the search ends *decided* on it (power), and decided on another (an error);
* ``tie``: the two fastest are equally fast: any *decided* verdict is an error, and must
  happen in at most 5% of searches;
* every search: the time spent never exceeds the budget.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.tune.halving import Evidence, Rules, Search


@dataclass(frozen=True)
class FakeVariation:
    """A leader with one knob turned, by name."""

    leader: str
    cell: str
    factor: float


@dataclass
class FakeSpace:
    """Configurations by name with true median step times; each leader's variations
    are ``factors`` of it (by default, slower than it by the gap and more)."""

    times: dict[str, float]
    factors: tuple[float, ...] = (1.10, 1.15, 1.25)
    made: list[FakeVariation] = field(default_factory=list)

    def baselines(self) -> list[str]:
        return ["default", "fit"]

    def core(self) -> list[str]:
        return [k for k in self.times if k not in self.baselines()]

    def variations(self, leader: Hashable) -> list[FakeVariation]:
        out = [FakeVariation(str(leader), f"{leader}~{i}", f) for i, f in enumerate(self.factors)]
        for v in out:
            self.times[v.cell] = self.times[v.leader] * v.factor
        self.made += out
        return out

    def combine(self, leader: Hashable, better: Sequence[FakeVariation]) -> str | None:
        if len(better) < 2:
            return None
        name = f"{leader}+" + "+".join(v.cell for v in better)
        self.times[name] = self.times[str(leader)] * math.prod(v.factor for v in better)
        return name


def reference_like(gap: float) -> dict[str, float]:
    """True median step times (s): 16 core configurations like the reference CNN's (the
    default 33 ms, fit 35 ms, the fastest ``gap`` faster than the next)."""
    rng = np.random.default_rng(0)
    times = {"default": 0.033, "fit": 0.035}
    times.update({f"c{i:02d}": 0.024 * (1 + gap) + 0.03 * rng.random() for i in range(14)})
    times["best"] = 0.024
    return times


@dataclass(frozen=True)
class Outcome:
    """One simulated search."""

    decided: bool
    winner: str
    truly_best: str
    spent_s: float
    runs: int


def simulate(
    times: dict[str, float], noise: float, budget_s: float, run_s: float, seed: int, gap: float
) -> Outcome:
    """Runs one search against a :class:`FakeSpace` of ``times``."""
    rng = np.random.default_rng(seed)
    space = FakeSpace(dict(times), (1 + gap, 1 + 2 * gap, 1.25))
    search = Search(space, Rules(first_run_s=run_s), budget_s)
    medians: dict[Hashable, list[float]] = {}
    spent = 0.0
    while wanted := search.propose(_evidence(medians, run_s), spent):
        for key, runs in wanted.items():
            for _ in range(runs):
                true = space.times[str(key)]
                medians.setdefault(key, []).append(true * math.exp(rng.normal(0, noise)))
                spent += run_s
    evidence = _evidence(medians, run_s)
    winner = str(search.live(evidence)[0])
    best = min(search.status, key=lambda k: space.times[str(k)])
    runs = sum(len(m) for m in medians.values())
    return Outcome(search.ended == "decided", winner, str(best), spent, runs)


def _evidence(medians: dict[Hashable, list[float]], run_s: float) -> dict[Hashable, Evidence]:
    return {k: Evidence(tuple(m), (run_s,) * len(m)) for k, m in medians.items()}


def rates(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Decided on the truly best, decided on another, undecided; the most time spent."""
    n = len(outcomes)
    right = sum(o.decided and o.winner == o.truly_best for o in outcomes)
    wrong = sum(o.decided and o.winner != o.truly_best for o in outcomes)
    return {
        "decided_right": right / n,
        "decided_wrong": wrong / n,
        "undecided": 1 - (right + wrong) / n,
        "max_spent_s": max(o.spent_s for o in outcomes),
        "mean_runs": float(np.mean([o.runs for o in outcomes])),
    }


def tie(times: dict[str, float]) -> dict[str, float]:
    """``times`` with the runner-up as fast as the best."""
    runner_up = sorted(times, key=times.__getitem__)[1]
    return {**times, runner_up: times["best"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.04)
    parser.add_argument("--gap", type=float, default=0.10)
    parser.add_argument("--budget", type=float, default=600.0)
    parser.add_argument("--run-s", type=float, default=9.0)
    args = parser.parse_args(argv)
    clear = reference_like(args.gap)
    for name, times in (("clear", clear), ("tie", tie(clear))):
        outcomes = [
            simulate(times, args.noise, args.budget, args.run_s, seed, args.gap)
            for seed in range(args.searches)
        ]
        figures = ", ".join(f"{k} {v:.3g}" for k, v in rates(outcomes).items())
        print(f"{name}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
