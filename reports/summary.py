"""Per-cell summaries: repeats pooled, every statistic derived from the raw step samples."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reports import stats
from reports.frames import Results
from reports.schema import CELL_KEY_FIELDS

BASELINE = ("eager", "float32")  # (mode, precision) of the default speedup baseline
# Runs that stopped early still measured real steps; a cell with no ok run is summarised
# from them, and marked partial.
PARTIAL_STATUSES = ("timeout", "interrupted", "diverged")
SUMMARY_COLUMNS = (
    "variant",
    *CELL_KEY_FIELDS,
    "status",
    "reason",
    "log_file",
    "runs",
    "runs_ok",
    "partial",
    "steps",
    "steps_trained",
    "step_median_s",
    "step_ci_low_s",
    "step_ci_high_s",
    "ci_within_run",
    "step_p10_s",
    "step_p25_s",
    "step_p75_s",
    "step_p90_s",
    "step_iqr_s",
    "step_cv",
    "step_rcv",
    "throughput",
    "throughput_ci_low",
    "throughput_ci_high",
    "first_step_s",
    "epoch_s",
    "eval_s",
    "test_accuracy",
    "best_test_accuracy",
    "peak_rss_bytes",
    "retraced",
    "flops_per_step",
    "flops_per_step_profiler",
    "peak_flops",
    "achieved_flops",
    "fraction_of_peak",
    "input_share",
    "rss_growth_bytes",
    "device_peak_bytes",
    "target_precision",
    "precision_reached",
    "runs_out_of_time",
)


def _status(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{s} {n}/{len(statuses)}" for s, n in counts.items())


def measured_runs(runs: pd.DataFrame) -> tuple[pd.Series, bool]:
    """The run ids whose steps count for a cell, and whether they are partial runs."""
    ok = runs.loc[runs["status"] == "ok", "run_id"]
    if not ok.empty:
        return ok, False
    return runs.loc[runs["status"].isin(PARTIAL_STATUSES), "run_id"], True


def timed_groups(steps: pd.DataFrame, run_ids: pd.Series) -> list[np.ndarray]:
    """The ``timed`` step seconds of each run, one array per run."""
    timed = steps[steps["run_id"].isin(run_ids) & (steps["phase"] == "timed")]
    return [g.to_numpy(float) for _, g in timed.groupby("run_id", sort=False)["seconds"]]


def steps_per_sample(steps: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """Training steps each sample of ``steps`` covers (a sample is one call).

    A call starts where the previous one ended, so its steps are the gap to the run's
    next sample; a run's last call runs its cell's steps per call, or up to its epoch's
    end if that comes first.
    """
    if steps.empty:
        return pd.Series(dtype=int)
    by_run = runs.drop_duplicates("run_id").set_index("run_id")
    per_call = steps["run_id"].map(by_run["steps_per_call"]).astype(float)
    epoch_length = pd.to_numeric(steps["run_id"].map(by_run["steps_in_epoch"]), errors="coerce")
    to_epoch_end = (steps["epoch"] + 1) * epoch_length - steps["step"]
    last = np.fmin(per_call, to_epoch_end)  # fmin: a missing epoch length is no cap
    gap = steps.groupby("run_id", sort=False)["step"].shift(-1) - steps["step"]
    return gap.fillna(last).astype(int)


def _step_stats(groups: list[np.ndarray], steps: int, batch: int) -> dict[str, Any]:
    pooled = np.concatenate(groups) if groups else np.array([])
    median = stats.median(pooled)
    low, high = stats.median_ci(groups) if pooled.size else (np.nan, np.nan)
    return dict(
        steps=steps,
        step_median_s=median,
        step_ci_low_s=low,
        step_ci_high_s=high,
        ci_within_run=bool(pooled.size) and not stats.covers_runs(groups),
        step_p10_s=stats.quantile(pooled, 0.10),
        step_p25_s=stats.quantile(pooled, 0.25),
        step_p75_s=stats.quantile(pooled, 0.75),
        step_p90_s=stats.quantile(pooled, 0.90),
        step_iqr_s=stats.iqr(pooled),
        step_cv=stats.coefficient_of_variation(pooled),
        step_rcv=stats.robust_cv(pooled),
        throughput=batch / median if median > 0 else np.nan,
        throughput_ci_low=batch / high if high > 0 else np.nan,
        throughput_ci_high=batch / low if low > 0 else np.nan,
    )


def _median_of(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.median()) if len(numbers) else np.nan


def _efficiency(measured: pd.DataFrame, results: Results, ids: pd.Series) -> dict[str, Any]:
    """FLOPs per step, peak, input share and memory growth of a cell's measured runs."""
    steps = results.steps
    timed = steps[steps["run_id"].isin(ids) & (steps["phase"] == "timed")]
    inputs = pd.to_numeric(timed["input_seconds"], errors="coerce")
    input_share = (
        inputs.sum() / timed.loc[inputs.notna(), "seconds"].sum()
        if inputs.notna().any()
        else np.nan
    )
    ep = results.epochs[results.epochs["run_id"].isin(ids)].sort_values("epoch")
    rss = pd.to_numeric(ep["rss_bytes"], errors="coerce")
    growth = [g.iloc[-1] - g.iloc[0] for _, g in rss.groupby(ep["run_id"]) if g.notna().sum() > 1]
    return dict(
        flops_per_step=_median_of(measured["flops_per_step"]),
        flops_per_step_profiler=_median_of(measured["flops_per_step_profiler"]),
        peak_flops=_median_of(measured["peak_flops"]),
        input_share=input_share,
        rss_growth_bytes=float(np.median(growth)) if growth else np.nan,
        # a peak is the most the device held at any time: the largest epoch's, of any run
        device_peak_bytes=pd.to_numeric(ep["device_peak_bytes"], errors="coerce").max(),
    )


def _sampling(measured: pd.DataFrame) -> dict[str, Any]:
    """The precision asked of a cell (adaptive sampling), and how many runs their time
    budget stopped before their own median was that precise."""
    target = pd.to_numeric(measured["target_precision"], errors="coerce").dropna()
    return dict(
        target_precision=float(target.max()) if len(target) else np.nan,
        runs_out_of_time=int((measured["stopped_by"] == "budget").sum()),
    )


def _cell_row(runs: pd.DataFrame, results: Results, counts: pd.Series) -> dict[str, Any]:
    first = runs.iloc[0]
    ids, partial = measured_runs(runs)
    measured = runs[runs["run_id"].isin(ids)]
    ep = results.epochs[results.epochs["run_id"].isin(ids)]
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    not_ok = runs[runs["status"] != "ok"]
    mine = results.steps["run_id"].isin(ids)
    trained = counts[mine].groupby(results.steps.loc[mine, "run_id"]).sum()
    timed = int(counts[mine & (results.steps["phase"] == "timed")].sum())
    row = {f: first[f] for f in ("variant", *CELL_KEY_FIELDS)}
    row.update(
        status=_status(runs["status"]),
        reason=not_ok["reason"].dropna().iloc[0] if not_ok["reason"].notna().any() else None,
        log_file=not_ok["log_file"].dropna().iloc[0] if not_ok["log_file"].notna().any() else None,
        runs=len(runs),
        runs_ok=0 if partial else len(ids),
        partial=bool(partial and len(ids)),
        steps_trained=int(trained.max()) if len(trained) else 0,
        first_step_s=stats.median(measured["first_step_s"].astype(float)),
        epoch_s=ep["train_seconds"].astype(float).mean(),
        eval_s=ep["eval_seconds"].astype(float).mean(),
        test_accuracy=last["test_accuracy"].astype(float).mean(),
        best_test_accuracy=ep.groupby("run_id")["test_accuracy"].max().astype(float).mean(),
        peak_rss_bytes=measured["peak_rss_bytes"].astype(float).max(),
        retraced=bool(measured["retraced"].any()),
        **_step_stats(timed_groups(results.steps, ids), timed, int(first["batch_size"])),
        **_efficiency(measured, results, ids),
        **_sampling(measured),
    )
    return row


def cell_groups(runs: pd.DataFrame) -> list[pd.Index]:
    """Row labels of ``runs`` grouped by cell (settings included), in first-seen order."""
    keys = list(CELL_KEY_FIELDS)
    filled = runs.astype({k: object for k in keys}).fillna({k: "∅" for k in keys})
    return list(filled.groupby(keys, sort=False, dropna=False).groups.values())


def summarize(results: Results) -> pd.DataFrame:
    """One row per cell (repeats pooled), in first-seen order.

    Statistics come from the cell's ok runs; a cell without any is summarised from runs
    that stopped early (timeout, interrupted, diverged) and marked ``partial``. The median
    step time carries a 95% run-level interval (:func:`stats.median_ci`); with one run it
    covers step-to-step noise only (``ci_within_run``). ``steps`` and ``steps_trained``
    count training steps, not calls (a call of ``MODE:N`` runs N steps).
    """
    if results.runs.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    counts = steps_per_sample(results.steps, results.runs)
    rows = [_cell_row(results.runs.loc[idx], results, counts) for idx in cell_groups(results.runs)]
    table = pd.DataFrame(rows)
    table["achieved_flops"] = table["flops_per_step"] / table["step_median_s"]
    table["fraction_of_peak"] = table["achieved_flops"] / table["peak_flops"]
    centre = np.sqrt(table["step_ci_low_s"] * table["step_ci_high_s"])
    table["precision_reached"] = (table["step_ci_high_s"] - table["step_ci_low_s"]) / (2 * centre)
    return table[list(SUMMARY_COLUMNS)]


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
