"""The search: successive halving over configurations, decided on run-level evidence.

Pure logic, no processes: each round it takes every candidate's :class:`Evidence` (the
median step time of each of its runs, each run a fresh process) and the time spent, and
says how many runs each candidate gets next (:meth:`Search.propose`). So it can be driven
by the matrix job loop (:mod:`bench.tune.driver`) or by a simulation
(``python -m bench.benchmarks.tune_search``).

* **Round 1** gives every core configuration one run, and the baselines (``function``
  float32 and ``fit`` as written) :attr:`Rules.baseline_runs` runs, so the run-to-run
  spread is known from the start.
* **Cuts.** After each round the live candidates are ranked by the mean log of their run
  medians. The best :attr:`Rules.keep` fraction stays (at least two); of the rest, a
  candidate is cut only when its 95% interval lies wholly above the cut-off candidate's.
  Intervals use the run-to-run spread pooled over every candidate with two or more runs
  (a t interval of the mean log run median, so one run is judged too), because one
  configuration's runs say little about their own spread.
* **Growing.** After round 2 the leading configurations (:attr:`Rules.leaders`) get
  one-knob variations; once those have two runs, every leader gets the combination of
  the knobs that beat it.
* **Deciding.** Then each round ends with a look: the search is *decided* when the
  interval of every other live candidate's median over the best one's
  (:func:`reports.stats.ratio_of_medians_ci`, Welch on log run medians) lies above 1.
  Cuts and looks are made at confidence ``1 - 0.05 / rounds`` (Bonferroni over the
  planned :attr:`Rules.rounds`), so cutting and looking every round keep the error
  rate; after the last round the search stops undecided. Later rounds hold at least
  :attr:`Rules.round_runs` runs, shared by the live candidates, best first.
* **Budget.** A round is trimmed to what the time left can pay for, each run costed at
  its candidate's median wall time so far: first one run each -- the two leaders first,
  then the baselines, then configurations not yet measured, then the rest by rank -- then
  the extra runs in the same order. Until the baselines have their
  :attr:`Rules.baseline_runs`, every round tops them up (every speedup is measured against
  them). When not even one run fits, the search ends.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import stats as sps

from reports import stats


@dataclass(frozen=True)
class Evidence:
    """A candidate's runs so far: ``medians`` of its ok runs (seconds per step), every
    run's ``walls`` (seconds), and ``problem``, why a run did not end ok."""

    medians: tuple[float, ...] = ()
    walls: tuple[float, ...] = ()
    problem: str | None = None

    @property
    def runs(self) -> int:
        """Runs with a median."""
        return len(self.medians)

    @property
    def centre(self) -> float:
        """The mean log run median (inf without runs)."""
        return float(np.mean(np.log(self.medians))) if self.medians else math.inf


@dataclass(frozen=True)
class Rules:
    """How the search spends its runs (see the module docstring).

    Attributes:
      keep: the fraction of live candidates a round keeps (at least two).
      confidence: the search's overall confidence; each round's cuts and look use
        ``1 - (1 - confidence) / rounds`` (Bonferroni over the rounds).
      rounds: the most rounds; the search stops undecided after them.
      baseline_runs: round 1's runs of each baseline.
      leaders: how many leading configurations get variations.
      round_runs: the fewest runs a later round holds, shared by the live candidates
        (best first), so a round between two candidates is worth its look.
      first_run_s: a run's wall time, guessed before any has run.
    """

    keep: float = 0.5
    confidence: float = 0.95
    rounds: int = 12
    baseline_runs: int = 3
    leaders: int = 2
    round_runs: int = 4
    first_run_s: float = 15.0

    def __post_init__(self) -> None:
        if not 0 < self.keep < 1 or not 0 < self.confidence < 1:
            raise ValueError("keep and confidence must be fractions in (0, 1)")
        counts = (self.rounds, self.baseline_runs, self.leaders, self.round_runs)
        if min(counts) < 1 or self.first_run_s <= 0:
            raise ValueError(
                "rounds, baseline_runs, leaders and round_runs must be >= 1, first_run_s > 0"
            )

    @property
    def level(self) -> float:
        """The confidence of each round's cuts and look."""
        return 1 - (1 - self.confidence) / self.rounds


class Varied(Protocol):
    """A leader with one knob turned (:class:`bench.tune.space.Variation`)."""

    @property
    def leader(self) -> Any: ...
    @property
    def cell(self) -> Any: ...


class SearchSpace(Protocol):
    """What the search asks of a space (:class:`bench.tune.space.Space`)."""

    def baselines(self) -> list[Any]: ...
    def core(self) -> list[Any]: ...
    def variations(self, leader: Any) -> Sequence[Varied]: ...
    def combine(self, leader: Any, better: Sequence[Any]) -> Any | None: ...


@dataclass
class Status:
    """Where a candidate stands: ``live``, ``cut``, ``failed`` or ``unmeasured``."""

    state: str = "live"
    note: str = ""


def pooled_spread(evidence: Mapping[Hashable, Evidence]) -> tuple[float, int]:
    """The run-to-run standard deviation of log run medians, pooled over candidates with
    two or more runs, and its degrees of freedom (0: none yet)."""
    squares, df = 0.0, 0
    for e in evidence.values():
        if e.runs >= 2:
            logs = np.log(e.medians)
            squares += float(((logs - logs.mean()) ** 2).sum())
            df += e.runs - 1
    return (math.sqrt(squares / df), df) if df else (math.nan, 0)


def log_ratio_interval(
    a: Evidence, b: Evidence, sd: float, df: int, confidence: float
) -> tuple[float, float]:
    """The t interval of log(median a / median b): the difference of the mean log run
    medians, with the pooled spread."""
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * sd * math.sqrt(1 / a.runs + 1 / b.runs)
    diff = a.centre - b.centre
    return diff - half, diff + half


def beats_all(
    best: Evidence, others: Sequence[Evidence], confidence: float
) -> tuple[bool, list[tuple[float, float]]]:
    """Whether the interval of every other median over ``best``'s lies above 1, and those
    intervals; each side needs two runs."""
    ratios = [
        stats.ratio_of_medians_ci([[m] for m in o.medians], [[m] for m in best.medians], confidence)
        for o in others
        if o.runs >= 2 and best.runs >= 2
    ]
    complete = len(ratios) == len(others)
    return complete and all(low > 1 for low, _ in ratios), ratios


@dataclass
class Search:
    """Successive halving over a :class:`SearchSpace` within ``budget_s`` seconds."""

    space: SearchSpace
    rules: Rules = field(default_factory=Rules)
    budget_s: float = 600.0
    status: dict[Hashable, Status] = field(default_factory=dict)
    lineage: dict[Hashable, Varied] = field(default_factory=dict)
    round: int = 0
    stage: str = "core"  # then "variations", "combined", "final"
    ended: str | None = None  # why: decided, rounds, budget
    log: list[str] = field(default_factory=list)

    def live(self, evidence: Mapping[Hashable, Evidence]) -> list[Hashable]:
        """Live candidates, best first (those without runs last, in the order found)."""
        keys = [k for k, s in self.status.items() if s.state == "live"]
        return sorted(keys, key=lambda k: evidence.get(k, Evidence()).centre)

    def propose(
        self, evidence: Mapping[Hashable, Evidence], elapsed_s: float
    ) -> dict[Hashable, int]:
        """Runs to add per candidate in the next round (new candidates included); empty
        when the search has ended (:attr:`ended` says why)."""
        if self.ended:
            return {}
        if self.round == 0:
            wanted = self._start()
        else:
            self._settle(evidence)
            self._grow(evidence)
            if self.stage == "final" and self._look(evidence):
                return {}
            wanted = self._spread(self.live(evidence))
            for k, runs in self._top_up(evidence).items():
                wanted[k] = max(wanted.get(k, 0), runs)
        wanted = self._fit(wanted, evidence, self.budget_s - elapsed_s)
        if not wanted:
            self.ended = self.ended or "budget"
            self.log.append("the budget has no room for another run: the search ends")
            return {}
        self.round += 1
        return wanted

    def _add(self, keys: Sequence[Hashable]) -> list[Hashable]:
        new = [k for k in dict.fromkeys(keys) if k not in self.status]
        self.status.update({k: Status() for k in new})
        return new

    def _spread(self, live: list[Hashable]) -> dict[Hashable, int]:
        """One run for each live candidate, more for the best ones while the round holds
        fewer than :attr:`Rules.round_runs`."""
        if not live:
            return {}
        each, extra = divmod(max(self.rules.round_runs, len(live)), len(live))
        return {k: each + (i < extra) for i, k in enumerate(live)}

    def _top_up(self, evidence: Mapping[Hashable, Evidence]) -> dict[Hashable, int]:
        """The runs each baseline lacks of :attr:`Rules.baseline_runs` (cut or not: every
        speedup is measured against them)."""
        runs = {k: evidence.get(k, Evidence()).runs for k in self.space.baselines()}
        return {
            k: self.rules.baseline_runs - n for k, n in runs.items() if n < self.rules.baseline_runs
        }

    def _start(self) -> dict[Hashable, int]:
        baselines = self._add(self.space.baselines())
        core = self._add(self.space.core())
        return {**{k: self.rules.baseline_runs for k in baselines}, **dict.fromkeys(core, 1)}

    def _settle(self, evidence: Mapping[Hashable, Evidence]) -> None:
        """Fails candidates whose runs broke; cuts the clearly slower ones."""
        for k in self.live(evidence):
            problem = evidence.get(k, Evidence()).problem
            if problem:
                self.status[k] = Status("failed", problem)
        measured = [k for k in self.live(evidence) if evidence.get(k, Evidence()).runs]
        keep = max(2, math.ceil(self.rules.keep * len(measured)))
        cut = self._cut(evidence, measured, keep) if len(measured) > 1 else []
        self.log.append(
            f"after round {self.round}: {len(self.live(evidence))} configuration(s) left"
            + (f", {len(cut)} cut" if cut else "")
        )

    def _cut(
        self, evidence: Mapping[Hashable, Evidence], ranked: list[Hashable], keep: int
    ) -> list[Hashable]:
        """Cuts every candidate slower than the best, and those ranked below ``keep``
        slower than the cut-off: the interval of the ratio lies above 1 (a tie stays)."""
        sd, df = pooled_spread(evidence)
        if df < 1:
            return []
        conf = self.rules.level
        best, cutoff = evidence[ranked[0]], evidence[ranked[min(keep, len(ranked)) - 1]]
        cut = []
        for i, k in enumerate(ranked[1:], start=1):
            for name, ref in (("the best", best), ("the cut-off", cutoff)):
                if ref is cutoff and i < keep:
                    continue
                if log_ratio_interval(evidence[k], ref, sd, df, conf)[0] > 0:
                    slower = math.exp(evidence[k].centre - ref.centre) - 1
                    note = f"cut after round {self.round}: {slower:.0%} slower than {name}"
                    self.status[k] = Status("cut", note)
                    cut.append(k)
                    break
        return cut

    def _grow(self, evidence: Mapping[Hashable, Evidence]) -> None:
        """Adds variations after round 2, then the combinations (see the docstring)."""
        if self.stage == "core" and self.round >= 2:
            leaders = self.live(evidence)[: self.rules.leaders]
            found = [v for leader in leaders for v in self.space.variations(leader)]
            added = self._add([v.cell for v in found])
            self.lineage.update({v.cell: v for v in found if v.cell in added})
            self.stage = "variations" if added else "combined"
            self.log.append(f"{len(added)} variation(s) of the {len(leaders)} leader(s)")
        elif self.stage == "variations" and self._variations_measured(evidence):
            self.stage = "combined"
            self._add_combinations(evidence)
        elif self.stage == "combined":
            self.stage = "final"

    def _variations_measured(self, evidence: Mapping[Hashable, Evidence]) -> bool:
        return all(
            evidence.get(k, Evidence()).runs >= 2
            for k in self.lineage
            if self.status[k].state == "live"
        )

    def _add_combinations(self, evidence: Mapping[Hashable, Evidence]) -> None:
        leaders = dict.fromkeys(v.leader for v in self.lineage.values())
        combos = []
        for leader in leaders:
            mine = [v for v in self.lineage.values() if v.leader == leader]
            base = evidence.get(leader, Evidence()).centre
            better = sorted(
                (v for v in mine if evidence.get(v.cell, Evidence()).centre < base),
                key=lambda v: evidence[v.cell].centre,
            )
            combos.append(self.space.combine(leader, better))
        added = self._add([c for c in combos if c is not None])
        self.log.append(f"{len(added)} combination(s) of the knobs that beat their leader")

    def _look(self, evidence: Mapping[Hashable, Evidence]) -> bool:
        """The round's look at the decision; True when the search has ended."""
        live = self.live(evidence)
        best = evidence.get(live[0], Evidence()) if live else Evidence()
        others = [evidence.get(k, Evidence()) for k in live[1:]]
        if live and beats_all(best, others, self.rules.level)[0]:
            self.ended = "decided"
        elif self.round >= self.rules.rounds:
            self.ended = "rounds"
        self.log.append(f"after round {self.round}: {self.ended or 'undecided'}")
        return self.ended is not None

    def _fit(
        self, wanted: dict[Hashable, int], evidence: Mapping[Hashable, Evidence], left_s: float
    ) -> dict[Hashable, int]:
        """``wanted`` trimmed to what ``left_s`` seconds pay for (see the docstring)."""
        # Medians: a run that started a zygote (a new environment) costs seconds more.
        walls = [w for e in evidence.values() for w in e.walls]
        typical = float(np.median(walls)) if walls else self.rules.first_run_s

        def cost(k: Hashable) -> float:
            mine = evidence.get(k, Evidence()).walls
            return float(np.median(mine)) if mine else typical

        baselines = [k for k in self.space.baselines() if k in wanted]
        ranked = [k for k in wanted if evidence.get(k, Evidence()).runs and k not in baselines]
        unmeasured = [k for k in wanted if k not in ranked and k not in baselines]
        order = [*ranked[:2], *baselines, *unmeasured, *ranked[2:]]
        out: dict[Hashable, int] = {}
        # First every candidate's first run, then the extra ones: a tight budget measures
        # every configuration once before it repeats the baselines.
        for first in (True, False):
            for k in order:
                runs = 1 if first else wanted[k] - out.get(k, 0)
                while runs and cost(k) * runs > left_s:
                    runs -= 1
                if runs:
                    out[k] = out.get(k, 0) + runs
                    left_s -= cost(k) * runs
        return {k: out[k] for k in wanted if k in out}  # in the order asked for

    def ranking(self, evidence: Mapping[Hashable, Evidence]) -> list[Hashable]:
        """Every candidate: live ones best first, then cut, failed and unmeasured ones."""
        order = ("live", "cut", "failed", "unmeasured")
        return sorted(
            self.status,
            key=lambda k: (
                order.index(self.status[k].state),
                evidence.get(k, Evidence()).centre,
            ),
        )

    def close(self, evidence: Mapping[Hashable, Evidence]) -> None:
        """Marks candidates that never ran ``unmeasured`` once the search has ended."""
        for k, s in self.status.items():
            if s.state == "live" and not evidence.get(k, Evidence()).runs:
                self.status[k] = Status("unmeasured", "the budget ran out before its first run")
