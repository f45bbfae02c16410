"""The bisection's search, decisions and repeat policy, with scripted looks (no runs)."""

import math

import pytest

from bench.gate.search import (
    AMBIGUOUS,
    BAD,
    FOUND,
    GOOD,
    INCONCLUSIVE,
    INTERRUPTED,
    NOT_REPRODUCED,
    SKIP,
    Look,
    Search,
    bisect,
    decide,
)
from reports.regression import Verdict


def _verdict(verdict: str, cell: str = "c") -> Verdict:
    return Verdict(cell, verdict, "why", 0.04, 0.05, 5, 5, 1.25, 1.1, 1.4, 0.01, 0.99)


class Scripted:
    """Looks decided by a function of the commit's index."""

    def __init__(self, decide_at):
        self.decide_at = decide_at
        self.calls = []

    def __call__(self, index):
        self.calls.append(index)
        return Look(self.decide_at(index), "scripted")


@pytest.mark.parametrize("size", range(1, 10))
def test_finds_the_first_bad_commit_wherever_it_is(size):
    for first_bad in range(size):
        look = Scripted(lambda i, fb=first_bad: BAD if i >= fb else GOOD)
        outcome = bisect(size, look)
        assert outcome.state == FOUND and outcome.suspects == (first_bad,)
        assert look.calls[0] == size - 1  # the reproduction comes first
        assert len(look.calls) == len(set(look.calls))  # no commit is judged twice
        assert len(look.calls) <= 1 + math.ceil(math.log2(size))  # halving, not walking


@pytest.mark.parametrize("decision", [GOOD, SKIP])
def test_stops_when_the_bad_end_is_not_bad(decision):
    look = Scripted(lambda i: decision)
    outcome = bisect(6, look)
    assert outcome.state == NOT_REPRODUCED and outcome.suspects == ()
    assert look.calls == [5]


def test_an_inconclusive_commit_is_skipped_but_stays_a_suspect():
    look = Scripted(lambda i: INCONCLUSIVE if i == 1 else (BAD if i >= 2 else GOOD))
    outcome = bisect(4, look)
    step = next(s for s in outcome.steps if s.index == 1)
    assert step.decision == SKIP and step.reason == "inconclusive: scripted"
    # Commit 1 could not be judged and commit 2 is bad: either can be the first bad one.
    assert outcome.state == AMBIGUOUS and outcome.suspects == (1, 2)
    assert look.calls.count(1) == 1  # judged once, never again


def test_a_skipped_commit_far_from_the_change_does_not_stop_the_search():
    look = Scripted(lambda i: SKIP if i == 1 else (BAD if i >= 5 else GOOD))
    outcome = bisect(8, look)
    assert outcome.state == FOUND and outcome.suspects == (5,)


def test_an_interrupted_look_ends_the_search_with_the_range_so_far():
    look = Scripted(lambda i: INTERRUPTED if len(look.calls) == 3 else (BAD if i >= 6 else GOOD))
    outcome = bisect(10, look)
    assert outcome.state == INTERRUPTED and len(outcome.steps) == 3
    assert (outcome.good, outcome.bad) == (4, 9)  # judged: 9 bad, then 4 good
    assert outcome.steps[-1].decision == INTERRUPTED


def test_search_refuses_what_cannot_narrow_it():
    search = Search(4)
    with pytest.raises(ValueError, match="outside the range"):
        search.record(3, GOOD)  # the bad end itself
    with pytest.raises(ValueError, match="does not narrow"):
        search.record(1, INCONCLUSIVE)
    with pytest.raises(ValueError, match="at least one commit"):
        Search(0)


@pytest.mark.parametrize(
    "verdicts, decision",
    [
        (["no change", "regression", "candidate failed"], BAD),
        (["no change", "candidate failed", "inconclusive"], SKIP),
        (["no change", "inconclusive"], INCONCLUSIVE),
        (["no change", "improvement"], GOOD),
        ([], SKIP),
    ],
)
def test_a_commit_is_bad_if_any_cell_regressed(verdicts, decision):
    cells = [_verdict(v, f"cell{i}") for i, v in enumerate(verdicts)]
    assert decide(cells)[0] == decision


def test_a_look_names_a_known_decision():
    with pytest.raises(ValueError, match="decision='maybe'"):
        Look("maybe", "")
