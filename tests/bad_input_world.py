"""The files the bad-input table reads: one good example of each kind tapebench reads,
and damaged ones, written into a directory that then serves as the working directory."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.matrix.cells import Cell, RunOptions
from bench.matrix.plan import create_plan, write_plan
from bench.matrix.store import ResultsDir
from reports.shards import Shard
from tests.conftest import learnable_arrays, write_idx_set, write_npz
from tests.reports.factories import make_record
from trainloop.config import Variant, Workload
from trainloop.datasets import locate_dataset
from trainloop.idx import write_idx

PYTEST_BENCHMARK = {
    "machine_info": {"cpu": {"brand_raw": "x"}},
    "benchmarks": [
        {
            "fullname": "bench/benchmarks/test_steps.py::test_step[function]",
            "stats": {"median": 0.1, "data": [0.1, 0.2], "iterations": 1},
            "extra_info": {"steps_per_round": 2},
        }
    ],
}

# Damaged run records: results directory name -> change to a good record's document.
RECORDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "rec-steps-null": lambda d: d.update(steps=None),
    "rec-seconds-str": lambda d: d["steps"]["seconds"].__setitem__(3, "abc"),
    "rec-seconds-negative": lambda d: d["steps"]["seconds"].__setitem__(2, -0.5),
    "rec-epochs-null": lambda d: d.update(epochs=None),
    "rec-repeat-str": lambda d: d["run"].update(repeat="0"),
    "rec-batch-str": lambda d: d["run"]["cell"].update(batch_size="64"),
    "rec-info-str": lambda d: d["run"].update(info="x"),
    "rec-status": lambda d: d["run"].update(status="great"),
    "rec-version": lambda d: d.update(schema_version=99),
}

# Damaged pytest-benchmark files: name -> change to a good document.
BENCHMARKS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "pb-nostats.json": lambda d: d["benchmarks"][0].pop("stats"),
    "pb-notlist.json": lambda d: d.update(benchmarks={"a": 1}),
    "pb-spr0.json": lambda d: d["benchmarks"][0]["extra_info"].update(steps_per_round=0),
    "pb-datastr.json": lambda d: d["benchmarks"][0]["stats"].update(data=["a"]),
    "pb-negative.json": lambda d: d["benchmarks"][0]["stats"].update(data=[-1.0]),
    "pb-nofullname.json": lambda d: d["benchmarks"][0].pop("fullname"),
    "pb-iterations0.json": lambda d: d["benchmarks"][0]["stats"].update(iterations=0),
    "pb-empty.json": lambda d: d.update(benchmarks=[]),
}

MATRIX_FILES = {
    "nested.toml": 'modes = [["eager"], ["function"]]\n',
    "emptylist.toml": "modes = []\n",
    "listforone.toml": "epochs = [1, 2]\n",
    "bool.toml": "epochs = true\n",
    "date.toml": "epochs = 1979-05-27\n",
    "table.toml": "[modes]\nx = 1\n",
    "unknown.toml": 'colour = "red"\n',
    "badtoml.toml": "modes = \n",
    "badmode.toml": 'modes = ["jit"]\n',
    "task.toml": 'dataset = "synthetic"\ntask_index = 1\n',
}


def _json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _results(root: Path) -> None:
    good = json.loads(json.dumps(make_record().to_dict()))
    _json(root / "good" / "runs" / "r0.json", good)
    for name, change in RECORDS.items():
        doc = copy.deepcopy(good)
        change(doc)
        _json(root / name / "runs" / "r0.json", doc)
    truncated = root / "rec-truncated" / "runs" / "r0.json"
    truncated.parent.mkdir(parents=True)
    truncated.write_text(json.dumps(good)[:150])
    (root / "empty" / "runs").mkdir(parents=True)


def _manifest(root: Path) -> None:
    """A sharded results directory whose manifest says repeats is a string."""
    out = root / "man-broken"
    workload = Workload(model="tiny", dataset="synthetic", epochs=1, steps_per_epoch=2)
    plan = create_plan(
        [Cell(Variant(), workload)],
        2,
        RunOptions(output_dir=out),
        {"synthetic": locate_dataset("synthetic")},
        shard=Shard(1, 2),
    )
    write_plan(ResultsDir(out).create(), plan)
    path = next((out / "invocations").glob("*.json"))
    _json(path, {**json.loads(path.read_text()), "repeats": "2"})
    _json(out / "runs" / "r0.json", make_record(run_id="r0").to_dict())


def _benchmarks(root: Path) -> None:
    _json(root / "pb-good.json", PYTEST_BENCHMARK)
    for name, change in BENCHMARKS.items():
        doc = copy.deepcopy(PYTEST_BENCHMARK)
        change(doc)
        _json(root / name, doc)
    (root / "notjson.json").write_text("{")


def _data(root: Path) -> None:
    write_idx_set(root / "small", learnable_arrays(10, 5))
    write_idx_set(root / "mid", learnable_arrays(200, 100))
    paths = write_idx_set(root / "notgz", learnable_arrays(64, 32))
    write_idx(paths[1].with_suffix(""), np.zeros(64, np.uint8))  # raw bytes ...
    paths[1].write_bytes(paths[1].with_suffix("").read_bytes())  # ... under the .gz name
    paths[1].with_suffix("").unlink()
    paths = write_idx_set(root / "badmagic", learnable_arrays(64, 32))
    paths[2].write_bytes(gzip.compress(b"PK\x03\x04" + bytes(64)))
    paths = write_idx_set(root / "mismatch", learnable_arrays(64, 32))
    write_idx(paths[1], np.zeros(63, np.uint8))
    paths = write_idx_set(root / "truncraw", learnable_arrays(64, 32), gz=False)
    paths[0].write_bytes(paths[0].read_bytes()[:-100])
    write_npz(root / "npzbroken" / "mnist.npz", learnable_arrays(10, 5))
    (root / "npzbroken" / "mnist.npz").write_bytes(b"PK\x03\x04broken")


def build_world(root: Path) -> None:
    """Writes every file the table names into ``root``."""
    _results(root)
    _manifest(root)
    _benchmarks(root)
    _data(root)
    for name, text in MATRIX_FILES.items():
        (root / name).write_text(text)
    (root / "afile").write_text("x")
    (root / "notsqlite.db").write_text("these are my notes, not a database\n")
    (root / "keras-home").mkdir()
