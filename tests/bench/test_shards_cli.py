"""``run --shard K/N`` on the command line, and ``report`` / ``history add`` merging shards
(on stored records: no TensorFlow involved)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.plan import Plan, create_plan, write_plan
from bench.matrix.store import ResultsDir
from reports.shards import Shard
from tests.bench.test_plan import SYNTHETIC, TINY
from tests.reports.factories import make_record
from trainloop.config import Variant

CELLS = [Cell(Variant.parse(m), TINY) for m in ("eager", "function", "xla")]
STEPS = (0.1,) * 60


def write_shard(root: Path, k: int, n: int, repeats: int = 2, cells=CELLS, profile=None) -> Plan:
    """A finished shard's results as ``run --shard k/n`` stores them."""
    options = RunOptions(output_dir=root, profile=profile)
    plan = create_plan(cells, repeats, options, {"synthetic": SYNTHETIC}, shard=Shard(k, n))
    results = ResultsDir(root).create()
    write_plan(results, plan.with_state("complete"))
    for slot in plan.slots:
        record = make_record(slot.slot_id, timed=STEPS, repeat=slot.repeat)
        cell = plan.cell_of(slot).to_dict()
        results.write_run(
            dataclasses.replace(
                record,
                invocation_id=plan.invocation_id,
                slot_id=slot.slot_id,
                cell=cell,
                purpose=slot.purpose,
            )
        )
    return plan


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def runs_per_cell(capsys, *dirs: Path) -> dict[str, tuple[int, int]]:
    """Variant -> (runs, timed steps) in ``report --format csv`` of ``dirs``."""
    code, out, _ = cli(capsys, "report", *map(str, dirs), "--format", "csv")
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    return {
        v: (r, s) for v, r, s in zip(table["variant"], table["runs"], table["steps"], strict=True)
    }


@pytest.mark.parametrize(
    "shard, message",
    [
        ("0/2", "'0/2': expected K/N with 1 <= K <= N"),
        ("3/2", "'3/2': expected K/N with 1 <= K <= N"),
        ("x/y", "'x/y': expected K/N"),
        ("1/0", "'1/0': expected K/N"),
        ("2", "'2': expected K/N"),
        ("5/5", "shard 5/5: the plan has 4 run(s) (2 cell(s) x 2 repeat(s)), too few for 5"),
    ],
)
def test_bad_shards_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, shard, message):
    out = tmp_path / "out"
    args = ["--variants", "eager,function", "--devices", "cpu", "--dataset", "synthetic"]
    code, stdout, err = cli(
        capsys, "run", *args, "--repeats", "2", "--shard", shard, "-o", str(out)
    )
    assert code == 2 and stdout == ""
    (line,) = err.splitlines()
    assert line.startswith("tapebench") and message in line
    assert not out.exists()


def test_a_shard_resumes_from_its_manifest_so_resume_takes_no_shard(tmp_path, capsys):
    write_shard(tmp_path / "r", 1, 2)
    code, out, err = cli(capsys, "run", "--resume", "--shard", "2/2", "-o", str(tmp_path / "r"))
    assert code == 2 and out == ""
    assert err.strip() == (
        "tapebench: error: --resume takes the plan from the results directory; drop --shard"
    )


def test_report_merges_shards_and_names_a_missing_one(tmp_path, capsys):
    first, second = write_shard(tmp_path / "s1", 1, 2), write_shard(tmp_path / "s2", 2, 2)
    code, merged, err = cli(capsys, "report", str(tmp_path / "s1"), str(tmp_path / "s2"))
    assert code == 0 and "shard" not in merged + err
    cells = runs_per_cell(capsys, tmp_path / "s1", tmp_path / "s2")
    assert cells == {f"{m}/float32@cpu": (2, 120) for m in ("eager", "function", "xla")}

    code, partial, err = cli(capsys, "report", str(tmp_path / "s1"))
    missing = f"shard 2/2 of plan {first.shard.plan_id} is missing: none of its results was read"
    assert code == 0 and err.strip() == f"tapebench: warning: {missing}"
    assert f"- {missing}" in partial  # among the report's warnings, above the table's own
    assert sum(runs for runs, _ in runs_per_cell(capsys, tmp_path / "s1").values()) == 3

    # CI artifacts downloaded into one folder: the same report as the two folders.
    together = tmp_path / "together"
    for shard in ("s1", "s2"):
        shutil.copytree(tmp_path / shard, together, dirs_exist_ok=True)
    assert cli(capsys, "report", str(together))[1] == merged
    # One shard selected by its invocation: the other is named missing.
    code, _, err = cli(capsys, "report", str(together), "--invocation", second.invocation_id)
    assert code == 0 and f"shard 1/2 of plan {first.shard.plan_id} is missing" in err


def test_report_names_a_shard_run_twice_and_refuses_plans_that_disagree(tmp_path, capsys):
    plans = [write_shard(tmp_path / d, k, 2) for d, k in (("a", 1), ("b", 1), ("c", 2))]
    code, out, err = cli(capsys, "report", *(str(tmp_path / d) for d in "abc"))
    ids = ", ".join(sorted(p.invocation_id for p in plans[:2]))
    assert code == 0 and f"shard 1/2 of plan {plans[0].shard.plan_id} was run by 2 " in err
    assert f"invocations ({ids}); the runs of all of them are pooled" in out

    path = ResultsDir(tmp_path / "c").manifest_path(plans[2].invocation_id)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "repeats": 3}))  # the id no longer fits the plan
    code, out, err = cli(capsys, "report", *(str(tmp_path / d) for d in "abc"))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert str(path) in line and f"both claim plan {plans[0].shard.plan_id}" in line


def test_history_add_refuses_a_matrix_with_a_missing_shard_unless_allowed(tmp_path, capsys):
    plan = write_shard(tmp_path / "s1", 1, 3)
    write_shard(tmp_path / "s3", 3, 3)
    db = tmp_path / "h.sqlite"
    add = ["history", "add", "--db", str(db), str(tmp_path / "s1"), str(tmp_path / "s3")]
    code, out, err = cli(capsys, *add)
    assert code == 2 and out == "" and not db.exists()
    (line,) = err.splitlines()
    assert f"shard 2/3 of plan {plan.shard.plan_id} is missing" in line
    assert "--allow-partial" in line

    code, _, err = cli(capsys, *add, "--allow-partial")
    assert code == 0 and "warning: shard 2/3" in err and "4 new run(s) of 4 added" in err
    write_shard(tmp_path / "s2", 2, 3)
    code, _, err = cli(capsys, *add, str(tmp_path / "s2"))
    assert code == 0 and "warning" not in err and "2 new run(s) of 6 added" in err, err


def test_history_add_counts_a_shard_of_profiling_runs_only_as_present(tmp_path, capsys):
    # Two cells, one repeat, a profiling run each, four shards: shards 3 and 4 trace only,
    # and the history stores timing runs only.
    shards = [write_shard(tmp_path / f"s{k}", k, 4, 1, CELLS[:2], (1, 2)) for k in range(1, 5)]
    assert {s.purpose for s in shards[2].slots + shards[3].slots} == {"profile"}
    dirs = [str(tmp_path / f"s{k}") for k in range(1, 5)]
    code, _, err = cli(capsys, "history", "add", "--db", str(tmp_path / "h.sqlite"), *dirs)
    assert code == 0 and "warning" not in err and "2 new run(s) of 2 added" in err, err


def test_an_unreadable_manifest_is_named(tmp_path, capsys):
    plan = write_shard(tmp_path / "s1", 1, 2)
    path = ResultsDir(tmp_path / "s1").manifest_path(plan.invocation_id)
    path.write_text(path.read_text()[:100])  # truncated
    code, out, err = cli(capsys, "report", str(tmp_path / "s1"))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"tapebench: error: {path}: unreadable invocation manifest")
