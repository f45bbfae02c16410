"""Bad input, as a new user would give it: command-line values, data files, result files,
pytest-benchmark files, matrix files, manifests and history databases.

Each row of the table runs ``tapebench`` in this process (the parent never imports
TensorFlow) and must end with exit code 2 and exactly one line on stderr that names the
offending value or file -- no traceback, nothing on stdout, and nothing written: the
working directory, which holds every file the table reads and is where every output
named on a command line would go, is the same afterwards. The few inputs only a worker
can see (data that is damaged past its header, a training set the parent never sized, a
cluster whose peers never come) end in a failed run that names them.
"""

from __future__ import annotations

import gzip
import shlex
import socket
import time
from pathlib import Path

import pytest

import bench.cli.calibrate
import bench.cli.gate
import bench.cli.run
from bench.cli import main
from bench.matrix.cells import Cell
from bench.matrix.job import Job, WorkerTask
from bench.matrix.workers import execute_job
from reports.load import load_records
from tests.bad_input_world import build_world
from tests.conftest import learnable_arrays, write_idx_set
from trainloop.config import Variant, Workload
from trainloop.datasets import locate_dataset

MW = "function*multiworker:2"
# (command line, what its one line of error must say); run from the world's directory.
TABLE = [
    # run: command-line values
    ("run --variants eager/", "precision after '/' is empty"),
    ("run --variants function:0", "steps per call '0' is not an integer >= 1"),
    ("run --variants xla@tpu", "device 'tpu' is not one of cpu, gpu"),
    ("run --variants function*", "strategy after '*' is empty"),
    ("run --variants ,", "',': expected MODE[:STEPS_PER_CALL][/PRECISION]"),
    ("run --variants eager --modes xla", "--variants cannot be combined with --modes"),
    ("run --modes eager,jit", "'eager,jit': expected a comma-separated list of eager"),
    ("run --devices tpu", "'tpu': expected a comma-separated list of cpu, gpu"),
    ("run --preset huge", "invalid choice: 'huge'"),
    ("run --learning-rate inf", "'inf' is not a finite positive number"),
    ("run --learning-rate nan", "'nan' is not a finite positive number"),
    ("run --learning-rate 0", "'0' is not a finite positive number"),
    ("run --timeout inf", "'inf' is not a positive number of seconds or 'none'"),
    ("run --timeout -3", "'-3' is not a positive number of seconds or 'none'"),
    ("run --steps-per-epoch 0", "'0' is not an integer >= 1 or 'all'"),
    ("run --eval-examples -1", "'-1' is not an integer >= 0 or 'all'"),
    ("run --warmup-steps all", "'all' is not an integer >= 0"),
    ("run --batch-sizes 32,x", "'x' is not an integer >= 1"),
    ("run --epochs 0", "'0' is not an integer >= 1"),
    ("run --seed -1", "'-1' is not an integer >= 0"),
    ("run --repeats 0", "'0' is not an integer >= 1"),
    ("run --intra-op-threads -1", "'-1' is not an integer >= 0"),
    ("run --profile 5:5", "'5:5': expected FIRST:LAST steps with 0 <= FIRST < LAST"),
    ("run --shard 0/2", "'0/2': expected K/N with 1 <= K <= N"),
    ("run --shard 3/2", "'3/2': expected K/N with 1 <= K <= N"),
    ("run --shard x/y", "'x/y': expected K/N"),
    ("run --dataset synthetic --shard 1/100", "too few for 100 shards"),
    ("run --shard 1/2 --resume", "--resume takes the plan from the results directory"),
    ("run --resume -o nowhere", "nowhere: not a tapebench results directory"),
    ("run --task-index 1 --dataset synthetic", "--task-index needs --cluster"),
    (f"run --variants {MW} --cluster 127.0.0.1:99999,127.0.0.1:1", "port '99999' is not"),
    (f"run --variants {MW} --cluster :1,:2", "':1': expected HOST:PORT"),
    (f"run --variants {MW} --cluster h:1,h:1", "h:1 is listed twice"),
    (f"run --variants {MW} --cluster h:1", "expected at least two HOST:PORT addresses"),
    (f"run --variants {MW} --cluster h:1,g:2 --task-index 2", "--task-index 2 names no worker"),
    ("run --variants function --cluster h:1,g:2", "every variant must end in *multiworker:2"),
    ("run --variants function*mirrored:3 --dataset synthetic", "does not split evenly over the 3"),
    ("run --dataset synthetic -o afile", "--output-dir afile: is a file, not a directory"),
    ("run --dataset synthetic -o afile/out", "--output-dir afile/out: "),
    ("run --dataset synthetic --batch-size 100000", "larger than the 60000 training examples"),
    ("run --dataset synthetic --epochs 1 --steps-per-epoch 10 --profile 20:25", "reaches past"),
    ("run --dataset mnist", "dataset mnist not found"),
    ("run --precision 2", "'2' is not a fraction between 0 and 1, or 'none'"),
    ("run --precision nan", "'nan' is not a fraction between 0 and 1, or 'none'"),
    ("run --run-budget inf", "'inf' is not a finite positive number"),
    ("run --max-runs 0", "'0' is not an integer >= 1"),
    # run: data files and directories
    ("run --data-dir small --dataset synthetic", "--dataset synthetic is generated"),
    ("run --data-dir afile", "--data-dir afile: is a file, not a directory"),
    ("run --data-dir nowhere", "--data-dir nowhere: no such directory"),
    ("run --data-dir small", "--batch-size 64 is larger than the 10 training examples"),
    ("run --data-dir mid --batch-sizes 32,300", "--batch-size 300 is larger than the 200"),
    ("run --data-dir mid --eval-examples 500", "--eval-examples 500 is more than the 100 test"),
    ("run --data-dir notgz", "train-labels-idx1-ubyte.gz: not gzip data"),
    ("run --data-dir badmagic", "t10k-images-idx3-ubyte.gz: bad magic number 0x504b0304"),
    ("run --data-dir mismatch", "holds 64 images but"),
    ("run --data-dir truncraw", "train-images-idx3-ubyte: truncated: shape (64, 28, 28)"),
    ("run --data-dir npzbroken", "mnist.npz: not a readable .npz file"),
    ("list --data-dir nowhere", "--data-dir nowhere: no such directory"),
    ("list --data-dir afile", "--data-dir afile: is a file, not a directory"),
    # run: matrix files
    ("run --matrix nested.toml", 'nested.toml: modes = [["eager"], ["function"]]: '),
    ("run --matrix emptylist.toml", "emptylist.toml: modes = []: an empty list"),
    ("run --matrix listforone.toml", "epochs = [1, 2]: expected one value, not a list"),
    ("run --matrix bool.toml", "epochs = true: true/false is only valid for switches"),
    ("run --matrix date.toml", "a TOML date is not a value of this option"),
    ("run --matrix table.toml", "a TOML table is not a value of this option"),
    ("run --matrix unknown.toml", "unknown.toml: unknown key 'colour'"),
    ("run --matrix badtoml.toml", "badtoml.toml: not valid TOML"),
    ("run --matrix badmode.toml", "badmode.toml: modes = [\"jit\"]: 'jit'"),
    ("run --matrix task.toml", "--task-index needs --cluster"),
    ("run --matrix nowhere.toml", "nowhere.toml: cannot read"),
    # report: run records, manifests and outputs
    ("report rec-steps-null", "r0.json: steps is null, expected an object"),
    ("report rec-seconds-str", 'r0.json: steps.seconds[3] is "abc", expected a number'),
    ("report rec-seconds-negative", "r0.json: steps: seconds[2] is -0.5, expected a time >= 0"),
    ("report rec-epochs-null", "r0.json: epochs is null, expected a list"),
    ("report rec-repeat-str", 'r0.json: run.repeat is "0", expected an integer'),
    ("report rec-batch-str", 'r0.json: run.cell.batch_size is "64", expected an integer'),
    ("report rec-info-str", 'r0.json: run.info is "x", expected an object'),
    ("report rec-status", "r0.json: run: status='great' is not one of ok"),
    ("report rec-version", "r0.json: schema_version 99 is not supported"),
    ("report rec-truncated", "r0.json: corrupt or truncated JSON"),
    ("report man-broken", 'json: repeats is "2", expected an integer'),
    ("report nowhere", "nowhere: no such file or directory"),
    ("report empty", "empty: no run files"),
    ("report good --out afile", "--out afile: is a file, not a directory"),
    ("report good --out afile/tables", "--out afile/tables: "),
    ("report good --html afile/r.html", "--html afile/r.html: "),
    ("report good --html good", "--html good: is a directory, not a file"),
    ("report good --format parquet", "--format parquet writes files: add --out DIR"),
    ("report good --format pdf", "'pdf': expected a comma-separated list of"),
    ("report good --invocation ,", "expected ID[,ID...] without empty items"),
    ("report good --invocation nope", "no runs of invocation(s) nope"),
    ("report good --baseline eager/", "precision after '/' is empty"),
    ("report good --target-accuracy 2", "'2' is not a fraction between 0 and 1"),
    # compare: pytest-benchmark files, results and outputs
    ("compare pb-good.json pb-nostats.json", "pb-nostats.json: not a pytest-benchmark JSON"),
    ("compare pb-good.json pb-notlist.json", 'benchmarks is {"a": 1}, expected a list'),
    ("compare pb-good.json pb-spr0.json", "extra_info.steps_per_round is 0, expected an"),
    ("compare pb-good.json pb-datastr.json", 'benchmarks[0].stats.data[0] is "a"'),
    ("compare pb-good.json pb-negative.json", "stats.data[0] is -1.0, expected a number > 0"),
    ("compare pb-good.json pb-nofullname.json", "benchmarks[0].fullname is missing"),
    ("compare pb-good.json pb-iterations0.json", "stats.iterations is 0, expected an integer"),
    ("compare pb-good.json pb-empty.json", "pb-empty.json: neither a tapebench results"),
    ("compare notjson.json pb-good.json", "notjson.json: not a pytest-benchmark JSON file"),
    ("compare good rec-seconds-str", 'steps.seconds[3] is "abc"'),
    ("compare good nowhere", "nowhere: no such file or directory"),
    ("compare pb-good.json pb-good.json --json afile/v.json", "--json afile/v.json: "),
    ("compare pb-good.json pb-good.json --summary good", "--summary good: is a directory"),
    ("compare pb-good.json pb-good.json --threshold inf", "'inf' is not a finite positive"),
    ("compare pb-good.json pb-good.json --min-effect-ms nan", "'nan' is not a number >= 0"),
    ("compare pb-good.json pb-good.json --alpha 1.5", "'1.5' is not a fraction between 0"),
    # history: databases, results, outputs
    ("history add good --db notsqlite.db", "--db notsqlite.db: not a SQLite database"),
    ("history add good --db afile/h.sqlite", "--db afile/h.sqlite: "),
    ("history add good --db good", "--db good: is a directory, not a SQLite file"),
    ("history add good --repo nowhere", "--repo nowhere: no such directory"),
    ("history add rec-seconds-str", 'steps.seconds[3] is "abc"'),
    ("history add nowhere", "nowhere: no such file or directory"),
    ("history add good --commit nosuchrev", "--commit 'nosuchrev' is not a commit"),
    ("history list --db nowhere.sqlite", "nowhere.sqlite: no history there"),
    ("history list --db notsqlite.db", "--db notsqlite.db: not a SQLite database"),
    ("history check --db mysql://x/y", "only SQLite files and postgresql:// URLs"),
    ("history check --threshold 2", "'2' is not a fraction between 0 and 1"),
    ("history check --window 0", "'0' is not an integer >= 1"),
    ("history check --json afile/c.json", "--json afile/c.json: "),
    ("history report --html afile/t.html", "--html afile/t.html: "),
    ("history report", "the following arguments are required: --html"),
    # traces, ab, calibrate, and the command itself
    ("traces nowhere", "nowhere: no such directory"),
    ("traces afile", "afile: is a file, not a directory"),
    ("traces good", "good: no traces in"),
    ("traces good --port 70000", "'70000' is not a port number"),
    ("ab --baseline HEAD --runs 0", "'0' is not an integer >= 1"),
    ("ab --baseline HEAD --variants eager/", "precision after '/' is empty"),
    ("ab --baseline HEAD -o good", "--output-dir good is not empty"),
    ("ab --baseline HEAD --min-pairs 2", "--runs/--min-pairs/--max-pairs/--look-every: "),
    ("ab --baseline HEAD --json afile/v.json", "--json afile/v.json: "),
    ("ab --baseline HEAD --summary good", "--summary good: is a directory"),
    ("calibrate --slowdowns 0.1,x", "'x' is not a finite positive number"),
    ("calibrate --slowdowns inf", "'inf' is not a finite positive number"),
    ("calibrate --aa -1", "'-1' is not an integer >= 0"),
    ("calibrate --variants function,xla", "calibrate takes one cell (got 2)"),
    ("calibrate --variants eager/", "precision after '/' is empty"),
    ("calibrate -o afile", "--output-dir afile: is a file, not a directory"),
    ("fly", "invalid choice: 'fly'"),
    ("", "the following arguments are required: command"),
]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    build_world(root)
    return root


@pytest.fixture
def in_world(world: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The world as working directory, with nothing that could start a worker."""
    monkeypatch.chdir(world)
    monkeypatch.setenv("KERAS_HOME", str(world / "keras-home"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input reached the point of starting a run")

    for module, name in [
        (bench.cli.run, "run_plan"),
        (bench.cli.run, "execute_job"),
        (bench.cli.gate, "run_ab"),
        (bench.cli.calibrate, "size_slowdowns"),
        (bench.cli.calibrate, "run_trials"),
    ]:
        monkeypatch.setattr(module, name, refuse)
    return world


@pytest.mark.parametrize("command, message", TABLE, ids=[c or "(nothing)" for c, _ in TABLE])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(in_world, capsys, command, message):
    before = _tree(in_world)
    code = main(shlex.split(command))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("tapebench"), err
    assert message in err, err
    assert "Traceback" not in err
    assert _tree(in_world) == before  # nothing written, nothing changed


def test_the_join_timeout_variable_is_checked_before_a_run(in_world, capsys, monkeypatch):
    monkeypatch.setenv("TAPEBENCH_JOIN_TIMEOUT", "soon")
    before = _tree(in_world)
    assert main(["run", "--dataset", "synthetic", "--variants", MW]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "$TAPEBENCH_JOIN_TIMEOUT='soon'" in err and not out
    assert _tree(in_world) == before


# Only a worker can tell: each is a real (tiny) run that fails and names the cause.

TINY = [
    "--precision",
    "none",
    "--repeats",
    "1",
    "--model",
    "tiny",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "4",
    "--warmup-steps",
    "1",
]
TINY += ["--eval-examples", "0", "--batch-size", "32", "--devices", "cpu"]


def test_data_damaged_past_its_header_fails_the_run_naming_the_file(tmp_path, monkeypatch):
    paths = write_idx_set(tmp_path / "data", learnable_arrays(128, 64))
    whole = paths[0].read_bytes()  # gzip of a good header and all the images: cut it short
    paths[0].write_bytes(gzip.compress(gzip.decompress(whole)[:-500]))
    out = tmp_path / "out"
    data = ["--data-dir", str(tmp_path / "data")]
    code = main(["run", *TINY, "--variants", "function", *data, "-o", str(out)])
    assert code == 1
    (record,) = load_records([out])
    assert record.status == "failed"
    assert "train-images-idx3-ubyte.gz: truncated" in record.reason


def test_a_training_set_without_a_batch_fails_the_run_in_the_worker(tmp_path):
    write_idx_set(tmp_path / "data", learnable_arrays(10, 5))
    source = locate_dataset("mnist", tmp_path / "data")
    workload = Workload(model="tiny", epochs=1, steps_per_epoch=2, warmup_steps=0, eval_examples=0)
    job = Job(WorkerTask("r", Cell(Variant(), workload), data_source=source), "inv", 0)
    record = execute_job(job, tmp_path / "r.log", timeout_s=300)
    assert record.status == "failed" and not record.steps.seconds
    assert "holds 10 examples, fewer than one batch of 64" in record.reason
    assert str(tmp_path / "data") in record.reason


def test_a_worker_whose_peers_never_come_fails_in_bounded_time(tmp_path, monkeypatch):
    listeners = [socket.socket() for _ in range(2)]
    for s in listeners:
        s.bind(("127.0.0.1", 0))
    cluster = [f"127.0.0.1:{s.getsockname()[1]}" for s in listeners]
    for s in listeners:
        s.close()  # free ports nobody listens on
    monkeypatch.setenv("TAPEBENCH_JOIN_TIMEOUT", "15")
    out = tmp_path / "out"
    started = time.monotonic()
    where = ["--cluster", ",".join(cluster), "--task-index", "0", "-o", str(out)]
    code = main(["run", *TINY, "--dataset", "synthetic", "--variants", MW, *where])
    assert code == 1
    (record,) = load_records([out])
    assert record.status == "failed" and record.wall_seconds < 60
    assert f"no answer from worker 1 at {cluster[1]}" in record.reason
    assert time.monotonic() - started < 120  # start-up (probe, peaks) included
