"""From the options of ``run`` and ``ab`` to checked cells, run options and datasets.

Everything the parent can know before a run starts is checked here, before anything is
written: the options against each other (``--task-index`` needs ``--cluster``,
``--data-dir`` needs a dataset that reads files), and every workload against its
dataset's size, read from the files' headers (a batch larger than the training set would
train no step; ``--eval-examples`` above the test set would evaluate fewer). Errors are
one line in the options' words.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from bench.cli.errors import UsageError
from bench.cli.paths import check_output_dir
from bench.matrix.cells import (
    PRESET_TIMEOUTS,
    PRESETS,
    Cell,
    RunOptions,
    Sampling,
    choose_variants,
    create_cells,
    create_variants,
    create_workloads,
    preset_sampling,
)
from bench.matrix.multiworker import join_timeout
from trainloop.config import Workload
from trainloop.datasets import DataSource, dataset_size, locate_dataset


def build_workloads(args: argparse.Namespace) -> list[Workload]:
    """Workloads from dataclass defaults, then the preset, then flags given explicitly."""
    given = vars(args)
    values: dict[str, Any] = dict(PRESETS[args.preset])
    values.update({f.name: given[f.name] for f in fields(Workload) if f.name in given})
    if args.keep_partial_batch:
        values["drop_remainder"] = False
    base = Workload(**values)
    return create_workloads(
        base, given.get("models", ()), given.get("datasets", ()), given.get("batch_sizes", ())
    )


def build_cells(args: argparse.Namespace) -> list[Cell]:
    """The cells requested on the command line."""
    workloads = build_workloads(args)
    if args.variants and (args.modes or args.precisions):
        raise UsageError("--variants cannot be combined with --modes/--precisions")
    if args.variants:
        variants = choose_variants(args.variants, args.devices)
    else:
        variants = create_variants(args.modes, args.precisions, args.devices)
    for v in variants:
        for w in workloads:
            if w.batch_size % v.replicas:
                raise ValueError(
                    f"--batch-size {w.batch_size} does not split evenly over the "
                    f"{v.replicas} replicas of {v.name} (the batch size is the global batch)"
                )
    return create_cells(variants, workloads)


def _run_options(args: argparse.Namespace) -> RunOptions:
    cluster = getattr(args, "cluster", None)
    task_index = getattr(args, "task_index", None)
    if task_index is not None and cluster is None:
        raise ValueError(
            "--task-index needs --cluster (every machine's HOST:PORT; the index picks this "
            "machine's worker)"
        )
    if cluster and task_index is not None and task_index >= len(cluster):
        raise ValueError(
            f"--task-index {task_index} names no worker of --cluster, whose "
            f"{len(cluster)} addresses are indexed 0..{len(cluster) - 1}"
        )
    return RunOptions(
        output_dir=args.output_dir,
        data_dir=args.data_dir,
        intra_op_threads=args.intra_op_threads,
        inter_op_threads=args.inter_op_threads,
        timeout_s=getattr(args, "timeout", PRESET_TIMEOUTS[args.preset]),
        profile=getattr(args, "profile", None),
        cluster=tuple(cluster) if cluster else None,
        task_index=task_index or 0,
        fork_workers=not args.exec_workers,
        sampling=build_sampling(args),
    )


def build_sampling(args: argparse.Namespace) -> Sampling | None:
    """The preset's adaptive sampling with the options given on the command line applied;
    None with ``--precision none`` or a preset without it and no sampling option."""
    given = vars(args)
    fields = {
        "precision": "precision",
        "run_budget_s": "run_budget",
        "cell_budget_s": "cell_budget",
        "min_timed_steps": "min_timed_steps",
        "max_runs": "max_runs",
    }
    changes = {name: given[option] for name, option in fields.items() if option in given}
    base = preset_sampling(args.preset)
    if "precision" in changes and changes["precision"] is None:
        return None
    if base is None and not changes:
        return None
    return dataclasses.replace(base or Sampling(), **changes)


def _check_cluster(cells: list[Cell], cluster: tuple[str, ...]) -> None:
    """With ``--cluster`` every cell must be a multi-worker cell of that many workers."""
    for cell in cells:
        v = cell.variant
        if v.strategy != "multiworker" or v.replicas != len(cluster):
            raise ValueError(
                f"--cluster lists {len(cluster)} workers, so every variant must end in "
                f"*multiworker:{len(cluster)} (got {v.name})"
            )


def _locate(cells: list[Cell], data_dir: Path | None) -> dict[str, DataSource]:
    names = list(dict.fromkeys(c.workload.dataset for c in cells))
    if data_dir is not None and names == ["synthetic"]:
        raise ValueError(
            f"--data-dir {data_dir}: --dataset synthetic is generated and reads no files "
            "(use --dataset mnist or fashion_mnist, or drop --data-dir)"
        )
    return {name: locate_dataset(name, data_dir) for name in names}


def _where(source: DataSource) -> str:
    if not source.paths:
        return f"the {source.name} data"
    return f"{source.name} in {Path(source.paths[0]).parent}"


def _fit(workload: Workload, source: DataSource, given: dict[str, Any], profile: Any) -> Workload:
    """``workload`` checked against the size of its dataset (from the files' headers)."""
    size, where = dataset_size(source), _where(source)
    train, test = size.train_examples, size.test_examples
    if not workload.full_batches(train):
        raise ValueError(
            f"--batch-size {workload.batch_size} is larger than the {train} training "
            f"examples of {where}: no training step would run; use --batch-size {train} or less"
        )
    if workload.eval_examples is not None and workload.eval_examples > test:
        if "eval_examples" in given:
            raise ValueError(
                f"--eval-examples {workload.eval_examples} is more than the {test} test "
                f"examples of {where}; use --eval-examples all or at most {test}"
            )
        workload = workload.replace(eval_examples=None)  # the preset's: the whole test set
    per_epoch = workload.steps_in_epoch(train)
    if profile is not None and profile[1] > workload.epochs * per_epoch:
        raise ValueError(
            f"--profile {profile[0]}:{profile[1]} reaches past the "
            f"{workload.epochs * per_epoch} steps a run of {where} trains "
            f"({workload.epochs} epoch(s) x {per_epoch}); end the window by then"
        )
    return workload


def _fit_cells(
    cells: list[Cell], sources: dict[str, DataSource], args: argparse.Namespace
) -> list[Cell]:
    profile = getattr(args, "profile", None)
    fitted: dict[Workload, Workload] = {}
    for w in dict.fromkeys(c.workload for c in cells):
        fitted[w] = _fit(w, sources[w.dataset], vars(args), profile)
    return [replace(c, workload=fitted[c.workload]) for c in cells]


def plan_cells(args: argparse.Namespace) -> tuple[list[Cell], RunOptions, dict[str, DataSource]]:
    """Cells, run options and located datasets, all checked before anything is written.

    Raises:
      UsageError: one line naming the offending option or file.
    """
    check_output_dir(args.output_dir, "--output-dir")
    try:
        cells = build_cells(args)
        options = _run_options(args)
        if options.cluster is not None:
            _check_cluster(cells, options.cluster)
        if any(c.variant.strategy == "multiworker" for c in cells):
            join_timeout(os.environ)
        sources = _locate(cells, args.data_dir)
        cells = _fit_cells(cells, sources, args)
    except ValueError as exc:  # dataset errors (not found, unreadable) are ValueErrors too
        raise UsageError(str(exc)) from None
    return cells, options, sources
