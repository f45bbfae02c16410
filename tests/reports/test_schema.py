import json

import pytest

from reports.schema import SCHEMA_VERSION, ResultFileError, Steps, read_run
from tests.reports.factories import make_record


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_round_trip_through_a_file(tmp_path):
    record = make_record()
    back = read_run(_write(tmp_path / "r.json", record.to_dict()))
    assert back == record
    assert back.variant_name == "function/float32@cpu"


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "r0.json"
    path.write_text(json.dumps(make_record().to_dict())[:200])
    with pytest.raises(ResultFileError, match=r"r0\.json: corrupt or truncated JSON"):
        read_run(path)


def test_unknown_schema_version(tmp_path):
    doc = {**make_record().to_dict(), "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ResultFileError, match=r"r\.json: schema_version 2 is not supported"):
        read_run(_write(tmp_path / "r.json", doc))


def test_not_a_run_file(tmp_path):
    with pytest.raises(ResultFileError, match="not a tapebench run file"):
        read_run(_write(tmp_path / "r.json", {"hello": 1}))
    with pytest.raises(ResultFileError, match="expected a JSON object"):
        read_run(_write(tmp_path / "r.json", [1, 2]))


def test_missing_and_malformed_fields(tmp_path):
    doc = make_record().to_dict()
    del doc["run"]["status"]
    with pytest.raises(ResultFileError, match=r"r\.json: run: missing field\(s\) status"):
        read_run(_write(tmp_path / "r.json", doc))
    doc = make_record().to_dict()
    doc["steps"]["seconds"].pop()
    with pytest.raises(ResultFileError, match="different lengths"):
        read_run(_write(tmp_path / "r.json", doc))
    doc = make_record().to_dict()
    doc["epochs"][0]["colour"] = "red"
    with pytest.raises(ResultFileError, match=r"epochs: unknown field\(s\) colour"):
        read_run(_write(tmp_path / "r.json", doc))
    doc = make_record().to_dict()
    del doc["run"]["cell"]["mode"]
    with pytest.raises(ResultFileError, match="cell is missing mode"):
        read_run(_write(tmp_path / "r.json", doc))


def test_validation():
    with pytest.raises(ValueError, match="status='weird'"):
        make_record(status="weird")
    with pytest.raises(ValueError, match="unknown step phase"):
        Steps(epoch=(0,), step=(0,), phase=("cooldown",), seconds=(1.0,), loss=(None,))


def test_non_finite_losses_are_stored_as_null():
    steps = Steps().extend(0, 0, ("first", "timed"), (1.0, 2.0), (float("nan"), 0.5))
    assert steps.loss == (None, 0.5)
    json.dumps(steps.loss, allow_nan=False)


def test_one_cell_label_short_for_people_and_full_for_the_gate():
    from reports.schema import WORKLOAD_FIELDS, cell_label
    from tests.reports.factories import CELL

    assert cell_label(CELL) == "function/float32@cpu tiny/synthetic b10 1xall"
    full = cell_label(CELL, every_field=True)
    assert full.startswith(cell_label(CELL) + " warmup 1 eval all seed 0 lr 0.001")
    changed = {"steps_per_epoch": 7, "eval_examples": 0, "drop_remainder": False}
    for name in WORKLOAD_FIELDS:  # every workload field tells two cells apart
        other = {**CELL, name: changed.get(name, 2 if name != "model" else "reference")}
        assert cell_label(other, every_field=True) != full, name
