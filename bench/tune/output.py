"""What ``tapebench tune`` prints and stores: the ranking with intervals, the verdict, the
recommendation and its command line, the guard's findings, the profiles side by side, and
the full training to run next -- as Markdown (``invocations/<search>.md``) and as JSON
(``tune.json`` in the results directory)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from bench.matrix.cells import Cell
from bench.tune.pipeline import TuneReport
from bench.tune.ranking import Interval, Row, config_label, run_command
from bench.tune.why import side_by_side
from reports.display import number
from reports.markdown_table import markdown_table

ENDINGS = {
    "decided": "the winner is decided (its interval against every other finalist excludes 1)",
    "rounds": "the planned rounds are spent",
    "budget": "the budget is spent",
    "interrupted": "interrupted",
}
TARGET_ACCURACY = 0.90  # a Fashion-MNIST accuracy the reference CNN reaches in an epoch or two


def _ms(i: Interval | None) -> str:
    if i is None:
        return "n/a"
    mark = " †" if i.within_run else ""
    return f"{number(i.value * 1e3)} [{number(i.low * 1e3)}–{number(i.high * 1e3)}]{mark}"


def _times(i: Interval | None) -> str:
    if i is None or not math.isfinite(i.value):
        return "n/a"
    mark = " †" if i.within_run else ""
    return f"{i.value:.2f}× [{i.low:.2f}–{i.high:.2f}]{mark}"


def _percent(fraction: float | None) -> str:
    if not fraction:
        return "n/a"
    return f"{fraction:.0%}" if fraction >= 0.1 else f"{fraction:.1%}"


def _guard_cell(report: TuneReport, cell: Cell) -> str:
    verdict = next((v for v in report.verdicts if v.cell == cell), None)
    if verdict is None:
        return ""
    word = {True: "pass", False: "**fails**", None: "no verdict"}[verdict.passed]
    return f"{word}: {verdict.note}"


def _standing(report: TuneReport, row: Row) -> str:
    if row.cell == report.recommended:
        return "**recommended**"
    word = {"live": "finalist"}.get(row.state, row.state)
    return word + (f" ({row.note})" if row.note else "")


def ranking_table(report: TuneReport) -> str:
    """The ranking: every configuration measured, with its figures and where it stands;
    then a line naming those the budget left unmeasured."""
    default = report.default
    rows = []
    shown = [r for r in report.rows if r.state != "unmeasured"]
    for i, r in enumerate(shown, start=1):
        peak = _percent(r.fraction_of_peak)
        speedup = "1 (the default)" if r.cell == default else _times(r.vs_default)
        rows.append(
            [
                str(i),
                f"`{config_label(r.cell)}`",
                _ms(r.step),
                str(r.runs),
                speedup,
                peak,
                _standing(report, r),
                _guard_cell(report, r.cell),
            ]
        )
    header = ["#", "Configuration", "Step ms [95% CI]", "Runs", "vs default [95% CI]"]
    header += ["% of peak", "Search", "Accuracy guard"]
    table = markdown_table(header, rows, "rlrrrrll")
    unmeasured = [f"`{config_label(r.cell)}`" for r in report.rows if r.state == "unmeasured"]
    if unmeasured:
        table += "\n\nNot measured (the budget ran out first): " + ", ".join(unmeasured) + "."
    return table


def _verdict(report: TuneReport) -> str:
    leaders = report.leaders
    ending = ENDINGS.get(report.ended, report.ended)
    runs = sum(r.runs for r in report.rows)
    text = (
        f"The search ran {runs} runs of {sum(1 for r in report.rows if r.runs)} "
        f"configurations in {report.spent_s:.0f} s (budget {report.options.budget_s:.0f} s) "
        f"and ended: {ending}."
    )
    if report.ended != "decided" and len(leaders) >= 2:
        a, b = (config_label(r.cell) for r in leaders[:2])
        text += (
            f" It is **undecided between `{a}` and `{b}`**: the runs cannot tell which is "
            "faster; the first ranks first by its median."
        )
    return text


def _row_of(report: TuneReport, cell: Cell) -> Row | None:
    return next((r for r in report.rows if r.cell == cell), None)


def recommendation(report: TuneReport) -> list[str]:
    """The recommended configuration, its speedups and the command that runs it."""
    cell = report.recommended
    row = _row_of(report, cell) if cell is not None else None
    if cell is None or row is None:
        return ["No recommendation: the search did not finish."]
    lines = [
        f"**Recommended: `{config_label(cell)}`** -- {_times(row.vs_default)} as fast as "
        f"the default (`function/float32`, the model as given), {_times(row.vs_fit)} as "
        "fast as Keras `fit` as users write it"
        + (
            f"; {_percent(row.fraction_of_peak)} of the {cell.variant.precision} matmul peak."
            if row.fraction_of_peak
            else "."
        )
    ]
    if cell == report.default:
        lines.append(
            "That is the default: no other configuration was shown faster than it (a "
            "run-level interval above 1) and passed the accuracy guard."
        )
    top = report.leaders[0] if report.leaders else None
    if top is not None and top.cell != cell:
        lines.append(f"The fastest by median, `{config_label(top.cell)}`, is not recommended: ")
        lines[-1] += why_not(report, top)
    lines.append(f"Run it: `{run_command(cell)}`")
    return lines


def why_not(report: TuneReport, row: Row) -> str:
    """Why ``row`` is not the recommendation (see :func:`bench.tune.pipeline.run_tune`)."""
    if row.cell == report.default:
        return "it is the default"
    if not row.shown_faster:
        one = " from one run, which covers step-to-step noise only" if row.runs < 2 else ""
        return f"its speedup over the default, {_times(row.vs_default)}{one}, is not shown above 1"
    verdict = next((v for v in report.verdicts if v.cell == row.cell), None)
    if verdict is not None:
        return _guard_cell(report, row.cell)
    if report.options.guard is None:
        return "without the accuracy guard only float32 configurations are recommended"
    return "the accuracy guard did not train it (not among the best measured)"


def guard_table(report: TuneReport) -> list[str]:
    """The guard's findings, the default first."""
    spec = report.options.guard
    if spec is None:
        return ["No accuracy guard (--no-guard): only float32 configurations were eligible."]
    rows = [
        [
            f"`{config_label(v.cell)}`",
            "n/a" if v.accuracy is None else f"{v.accuracy:.2%}",
            f"{v.steps:,}",
            _guard_cell(report, v.cell),
        ]
        for v in report.verdicts
    ]
    head = (
        f"**Accuracy guard**: {spec.epochs} epoch(s) of {spec.dataset}, full test set; "
        f"a configuration must reach float32's accuracy within {spec.tolerance:.1%}."
    )
    return [
        head,
        "",
        markdown_table(["Configuration", "Test acc.", "Steps", "Verdict"], rows, "lrrl"),
    ]


def why_table(report: TuneReport) -> list[str]:
    """The default's and the recommendation's profiles side by side."""
    if len(report.why) < 2:
        if report.problems:
            return [f"No profiles to compare: {'; '.join(report.problems)}."]
        if report.options.profile is None:
            return ["No profiles (--no-profile)."]
        if report.recommended == report.default:
            return ["No profiles to compare: the recommendation is the default."]
        return ["No profiles to compare."]
    table = side_by_side(*report.why)
    first, last = report.options.profile or (0, 0)
    rows = [
        [str(r.category), number(r.default_ms), number(r.winner_ms), f"{r.difference_ms:+.3g}"]
        for r in table.itertuples()
    ]
    head = (
        f"**Why** (profiles of steps {first}–{last - 1}, ms per training step; busy thread "
        "time by category, so with several cores the categories add up to more than a step):"
    )
    header = ["Category", "default", "recommended", "difference"]
    return [head, "", markdown_table(header, rows, "lrrr")]


def full_training(report: TuneReport) -> list[str]:
    """The 25-epoch training in the recommended configuration, for its time-to-accuracy."""
    cell = report.recommended
    if cell is None:
        return []
    out = f"{report.options.output_dir}-reference"
    dataset = report.options.guard.dataset if report.options.guard else "fashion_mnist"
    real = dataclasses.replace(cell, workload=cell.workload.replace(dataset=dataset))
    run = run_command(real, "--preset", "reference", "-o", out)
    return [
        "**Full training** (25 epochs, time-to-accuracy):",
        "",
        f"    {run}",
        f"    tapebench report {out} --target-accuracy {TARGET_ACCURACY}",
    ]


def render(report: TuneReport) -> str:
    """The whole Markdown report."""
    refused = [f"- {r}" for r in report.refusals]
    where = ", ".join(f"{k} {v}" for k, v in report.invocations.items())
    parts = [
        _verdict(report),
        ranking_table(report),
        "† one run: the interval covers step-to-step noise only. Step ms: the geometric "
        "mean of the runs' median step times, with the t interval over runs.",
        "\n".join(["**Not searched**", *refused]),
        "\n".join(recommendation(report)),
        "\n".join(guard_table(report)),
        "\n".join(why_table(report)),
        "\n".join(full_training(report)),
        f"Results in {report.options.output_dir} (invocations: {where}); "
        f"`tapebench report {report.options.output_dir}` shows every run.",
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _interval(i: Interval | None) -> dict[str, Any] | None:
    return (
        None
        if i is None
        else {"value": i.value, "low": i.low, "high": i.high, "within_run": i.within_run}
    )


def to_json(report: TuneReport) -> dict[str, Any]:
    """The report as a JSON document."""
    rows: Sequence[Row] = report.rows
    return {
        "kind": "tapebench.tune",
        "ended": report.ended,
        "spent_s": report.spent_s,
        "budget_s": report.options.budget_s,
        "invocations": dict(report.invocations),
        "recommended": None if report.recommended is None else report.recommended.to_dict(),
        "recommended_command": None
        if report.recommended is None
        else run_command(report.recommended),
        "refused": [{"what": r.what, "reason": r.reason} for r in report.refusals],
        "ranking": [
            {
                "configuration": config_label(r.cell),
                "cell": r.cell.to_dict(),
                "state": r.state,
                "note": r.note,
                "runs": r.runs,
                "step_s": _interval(r.step),
                "vs_default": _interval(r.vs_default),
                "vs_fit": _interval(r.vs_fit),
                "fraction_of_peak": r.fraction_of_peak,
            }
            for r in rows
        ],
        "guard": [
            {
                "configuration": config_label(v.cell),
                "accuracy": v.accuracy,
                "steps": v.steps,
                "passed": v.passed,
                "note": v.note,
            }
            for v in report.verdicts
        ],
    }
