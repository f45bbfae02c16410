"""``tapebench tune`` end to end on the tiny model: a real search within a small budget,
the accuracy guard turning down a configuration planted to learn worse, and the results
directory that ``report`` and ``compare`` read."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from bench.matrix.cells import Cell
from bench.tune.guard import GuardSpec
from bench.tune.halving import Rules
from bench.tune.output import render
from bench.tune.pipeline import TuneOptions, run_tune
from bench.tune.space import Change, Machine, Space
from reports.load import load_records
from tests.bench.test_cli import run_cli
from tests.conftest import learnable_arrays, write_idx_set
from trainloop.config import Variant, Workload
from trainloop.datasets import locate_dataset

TINY = Workload(model="tiny", dataset="synthetic", batch_size=32)
# No 16-bit arithmetic on this made-up CPU: both mixed precisions are refused, with why.
PLAIN_CPU = Machine("x86_64", 2, frozenset({"avx2", "fma"}))


@dataclasses.dataclass(frozen=True)
class PlantedSpace(Space):
    """The default, fit, function, function:10 and ``planted``; no variations."""

    planted: Cell | None = None

    def core(self) -> list[Cell]:
        plain = dataclasses.replace(self.default, variant=Variant("function"))
        ten = dataclasses.replace(plain, variant=Variant("function", steps_per_call=10))
        return [*self.baselines(), plain, ten, *([self.planted] if self.planted else [])]

    def changes(self, leader: Cell) -> list[Change]:
        return []


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A learnable task big enough for 128 guard steps (4096 images, batch 32)."""
    root = tmp_path_factory.mktemp("data") / "mnist"
    write_idx_set(root, learnable_arrays(n_train=4096, n_test=512))
    return root


def test_tune_guards_against_a_configuration_that_learns_worse(tmp_path, data_dir):
    options = TuneOptions(
        workload=TINY,
        output_dir=tmp_path / "out",
        budget_s=60,
        run_budget_s=2.0,
        data_dir=data_dir,
        guard=GuardSpec("mnist", epochs=1),
        guard_top=4,
        rules=Rules(baseline_runs=2),
        profile=(5, 45),
        measure_peak=False,
    )
    # The default runs eager, several times slower than any compiled step. The planted
    # configuration is function:10 at a learning rate that cannot learn in 128 steps:
    # fast, and worse. The guard trains all four others.
    default = dataclasses.replace(options.default, variant=Variant("eager"))
    planted = Cell(Variant("function", steps_per_call=10), default.workload)
    planted = dataclasses.replace(planted, workload=planted.workload.replace(learning_rate=1e-7))
    space = PlantedSpace(default, PLAIN_CPU, planted=planted)
    sources = {n: locate_dataset(n, data_dir) for n in ("synthetic", "mnist")}
    log = io.StringIO()
    report = run_tune(options, sources, stream=log, space=space)

    search_runs = [
        r
        for r in load_records([options.output_dir])
        if r.invocation_id == report.invocations["search"]
    ]
    longest = max(r.wall_seconds or 0.0 for r in search_runs)
    assert report.spent_s <= options.budget_s + longest  # no round it could not pay for
    assert "tune: round 1:" in log.getvalue()
    verdicts = {v.cell: v for v in report.verdicts}
    assert verdicts[planted].passed is False and "below it" in verdicts[planted].note
    assert verdicts[default].passed is True
    assert report.recommended is not None and report.recommended != planted
    assert verdicts[report.recommended].passed is True
    refused = {r.what: r.reason for r in report.refusals}
    assert "no bfloat16 arithmetic on this CPU" in refused["mixed_bfloat16"]
    text = render(report)
    assert "**fails**" in text and "tapebench run --variants" in text
    # why: the default's and the recommendation's profiles, category by category
    assert [s.run_id.rsplit("-", 2)[0] for s in report.why] == [report.invocations["profiles"]] * 2
    assert "| convolution |" in text and "| step (profiler) |" in text


def test_the_command_prints_its_table_and_stores_a_results_directory(tmp_path):
    out = tmp_path / "tuned"
    result = run_cli(
        # The guard and the profiles are the test above's: here the command line and
        # what it leaves, on the shortest search.
        tmp_path, "tune", "--model", "tiny", "--batch-size", "32", "--budget", "20s",
        "--run-budget", "2", "--no-guard", "--no-profile", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| # | Configuration | Step ms [95% CI]" in result.stdout
    assert "**Not searched**" in result.stdout and "Run it: `" in result.stdout
    summary = json.loads((out / "tune.json").read_text())
    assert summary["kind"] == "tapebench.tune" and summary["ranking"]
    assert summary["recommended_command"].startswith(("tapebench run", "TF_"))
    assert "search" in summary["invocations"]
    report = run_cli(tmp_path, "report", str(out))
    assert report.returncode == 0, report.stderr
    assert "function/float32@cpu" in report.stdout
    compare = run_cli(tmp_path, "compare", str(out), str(out))
    assert compare.returncode in (0, 1), compare.stderr  # like for like: no environment error


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0"], "'0' is not a duration"),
        (["--budget", "10 parsecs"], "is not a duration"),
        (["--guard-dataset", "synthetic"], "invalid choice"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent"], "/nonexistent"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = run_cli(tmp_path, "tune", *args, "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
