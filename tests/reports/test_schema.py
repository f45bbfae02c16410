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
    with pytest.raises(ResultFileError, match=r"epochs\[0\]: unknown field\(s\) colour"):
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


def _set(path: tuple, value):
    """A change to a stored document: ``path`` into it set to ``value``."""

    def change(doc):
        *parents, last = path
        for key in parents:
            doc = doc[key]
        doc[last] = value

    return change


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("steps",), None, "steps is null, expected an object"),
        (("steps", "seconds", 3), "abc", 'steps.seconds[3] is "abc", expected a number'),
        (("steps", "seconds", 3), None, "steps.seconds[3] is null, expected a number"),
        (("steps", "seconds", 3), True, "steps.seconds[3] is true, expected a number"),
        (("steps", "seconds", 3), -1.0, "steps: seconds[3] is -1.0, expected a time >= 0"),
        (("steps", "phase", 0), 3, "steps.phase[0] is 3, expected a string"),
        (("steps", "loss"), "x", 'steps.loss is "x", expected a list of numbers or null'),
        (("epochs",), None, "epochs is null, expected a list"),
        (("epochs", 0), 1, "epochs[0] is 1, expected an object"),
        (("epochs", 0, "train_seconds"), "x", 'epochs[0].train_seconds is "x", expected a number'),
        (
            ("epochs", 0, "test_accuracy"),
            [],
            "epochs[0].test_accuracy is [], expected a number or null",
        ),
        (("run",), [], "run is [], expected an object"),
        (("run", "repeat"), "0", 'run.repeat is "0", expected an integer'),
        (("run", "run_id"), 5, "run.run_id is 5, expected a string"),
        (("run", "peak_rss_bytes"), 1.5, "run.peak_rss_bytes is 1.5, expected an integer or null"),
        (("run", "fingerprint"), None, "run.fingerprint is null, expected an object"),
        (("run", "cell"), "x", 'run.cell is "x", expected an object'),
        (("run", "cell", "batch_size"), "64", 'run.cell.batch_size is "64", expected an integer'),
        (
            ("run", "cell", "steps_per_epoch"),
            "all",
            'run.cell.steps_per_epoch is "all", expected an integer or null',
        ),
        (
            ("run", "cell", "drop_remainder"),
            1,
            "run.cell.drop_remainder is 1, expected true or false",
        ),
        (("run", "info"), 3, "run.info is 3, expected an object"),
        (
            ("run", "info", "first_step_s"),
            "1s",
            'run.info.first_step_s is "1s", expected a number or null',
        ),
    ],
)
def test_every_field_is_checked_by_type_and_named(tmp_path, path, value, message):
    doc = json.loads(json.dumps(make_record().to_dict()))
    _set(path, value)(doc)
    with pytest.raises(ResultFileError) as caught:
        read_run(_write(tmp_path / "r.json", doc))
    assert str(caught.value) == f"{tmp_path / 'r.json'}: {message}"


def test_missing_top_level_parts_are_named(tmp_path):
    for part in ("steps", "epochs", "run"):
        doc = make_record().to_dict()
        del doc[part]
        with pytest.raises(ResultFileError, match=rf"r\.json: {part} is missing"):
            read_run(_write(tmp_path / "r.json", doc))


def test_cell_types_match_the_variant_and_workload_dataclasses():
    import dataclasses
    from typing import get_type_hints

    from reports.schema import CELL_TYPES
    from trainloop.config import Variant, Workload

    hints = {**get_type_hints(Variant), **get_type_hints(Workload)}
    names = [f.name for c in (Variant, Workload) for f in dataclasses.fields(c)]
    assert {n: hints[n] for n in names} == CELL_TYPES
