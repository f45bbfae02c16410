"""Per-cell summaries: repeats pooled, statistics derived from the raw step samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import stats
from reports.frames import Results
from reports.schema import CELL_FIELDS

BASELINE = ("eager", "float32")  # (mode, precision) of the default speedup baseline
SUMMARY_COLUMNS = (
    "variant",
    *CELL_FIELDS,
    "status",
    "reason",
    "runs",
    "runs_ok",
    "steps",
    "step_median_s",
    "step_p25_s",
    "step_p75_s",
    "step_cv",
    "steps_trained",
    "throughput",
    "first_step_s",
    "epoch_s",
    "eval_s",
    "test_accuracy",
    "retraced",
    "partial",
    "speedup",
)


def _status(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{s} {n}/{len(statuses)}" for s, n in counts.items())


# Runs that stopped early still measured real steps; a cell with no ok run is summarised
# from them, and marked partial.
PARTIAL_STATUSES = ("timeout", "interrupted", "diverged")


def _cell_row(runs: pd.DataFrame, steps: pd.DataFrame, epochs: pd.DataFrame) -> dict:
    first = runs.iloc[0]
    ok_ids = runs.loc[runs["status"] == "ok", "run_id"]
    partial = ok_ids.empty
    if partial:
        ok_ids = runs.loc[runs["status"].isin(PARTIAL_STATUSES), "run_id"]
    timed = steps.loc[steps["run_id"].isin(ok_ids) & (steps["phase"] == "timed"), "seconds"]
    ep = epochs[epochs["run_id"].isin(ok_ids)]
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    not_ok = runs.loc[runs["status"] != "ok", "reason"].dropna()
    median = stats.median(timed)
    row = {f: first[f] for f in ("variant", *CELL_FIELDS)}
    row.update(
        status=_status(runs["status"]),
        reason=not_ok.iloc[0] if len(not_ok) else None,
        runs=len(runs),
        runs_ok=0 if partial else len(ok_ids),
        partial=partial and not timed.empty,
        steps=len(timed),
        step_median_s=median,
        step_p25_s=stats.quantile(timed, 0.25),
        step_p75_s=stats.quantile(timed, 0.75),
        step_cv=stats.coefficient_of_variation(timed),
        throughput=first["batch_size"] / median if median > 0 else np.nan,
        first_step_s=stats.median(
            runs.loc[runs["run_id"].isin(ok_ids), "first_step_s"].astype(float)
        ),
        steps_trained=steps.loc[steps["run_id"].isin(ok_ids)].groupby("run_id").size().max(),
        epoch_s=ep["train_seconds"].astype(float).mean(),
        eval_s=ep["eval_seconds"].astype(float).mean(),
        test_accuracy=last["test_accuracy"].astype(float).mean(),
        retraced=bool(runs.loc[runs["run_id"].isin(ok_ids), "retraced"].any()),
    )
    return row


def summarize(results: Results, baseline: tuple[str, str] = BASELINE) -> pd.DataFrame:
    """One row per cell (repeats pooled), in first-seen order, with speedups.

    Statistics come from the cell's ok runs; a cell without any is summarised from runs
    that stopped early (timeout, interrupted, diverged) and marked ``partial``.

    ``speedup`` is the baseline's median step time over this cell's, the baseline being the
    cell with ``(mode, precision) == baseline`` on the same device and workload; NaN where
    that baseline was not measured.
    """
    runs = results.runs
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    keys = list(CELL_FIELDS)
    groups = runs.astype({k: object for k in keys}).fillna({k: "∅" for k in keys})
    rows = [
        _cell_row(runs.loc[idx], results.steps, results.epochs)
        for idx in groups.groupby(keys, sort=False, dropna=False).groups.values()
    ]
    table = pd.DataFrame(rows)
    others = [f for f in CELL_FIELDS if f not in ("mode", "precision")]
    base = table[(table["mode"] == baseline[0]) & (table["precision"] == baseline[1])]
    base = base[[*others, "step_median_s"]].rename(columns={"step_median_s": "_base"})
    table = table.merge(base.astype({k: object for k in others}), how="left", on=others).astype(
        {"_base": float}
    )
    table["speedup"] = table["_base"] / table["step_median_s"]
    return table.drop(columns="_base")[list(SUMMARY_COLUMNS)]


def describe_workload(row: pd.Series) -> str:
    """One line naming the workload of a summary row."""
    steps = row["steps_per_epoch"]
    per_epoch = "full epochs" if pd.isna(steps) else f"{int(steps)} steps/epoch"
    evals = row["eval_examples"]
    ev = (
        "full test set"
        if pd.isna(evals)
        else "no evaluation"
        if evals == 0
        else f"eval on {int(evals)} examples"
    )
    epochs = int(row["epochs"])
    return (
        f"{row['model']} model on {row['dataset']}, batch {row['batch_size']}, "
        f"{epochs} epoch{'s' if epochs != 1 else ''} x {per_epoch}, "
        f"{row['warmup_steps']} warm-up steps, {ev}, seed {row['seed']}"
    )
