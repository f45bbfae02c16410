"""``tapebench bisect`` as a user runs it: bad input, and every ending, with the A/B of
each commit replaced by a reading of the commit's exported tree (no runs)."""

import json
import os
import signal
from dataclasses import replace

import pytest

import bench.gate.bisect as bisect_module
from bench.cli import main
from bench.gate.bisect_history import record_step
from bench.gate.search import BAD, GOOD, INTERRUPTED, SKIP, Look, Step
from bench.history.store import HistoryStore
from bench.matrix.store import ResultsDir
from reports.regression import Verdict
from reports.schema import cell_label
from tests.bench.bisect_repo import STEP, TapebenchRepo, broken, mended, more_docs, slow_step
from tests.bench.test_cli import run_cli
from tests.reports.factories import make_record


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """good, docs, broken, mended, slow, docs: the step slows at the fifth commit."""
    repo = TapebenchRepo(tmp_path_factory.mktemp("bisect") / "repo")
    repo.hashes = [repo.good]
    for subject, edits in [
        ("Docs: a line", {"README.md": more_docs}),
        ("Break the step", {STEP: broken}),
        ("Mend the step", {STEP: mended}),
        ("Extra work in the train step", {STEP: slow_step}),
        ("Docs: another line", {"README.md": more_docs}),
    ]:
        repo.hashes.append(repo.commit(subject, edits))
    return repo


class TreeJudge:
    """Stands in for the A/B: a regression when the candidate's step has extra work the
    good one's has not, a failed candidate when it does not import, else no change."""

    def __init__(self, interrupt_at=None):
        self.calls = []
        self.interrupt_at = interrupt_at

    def __call__(self, good, candidate, cells, config, out, stop=None, stream=None):
        self.calls.append((candidate.commit, tuple(c.label for c in cells)))
        if len(self.calls) == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, during the A/B
            assert stop.requested
            return Look(INTERRUPTED, "stopped before the A/B finished", results=str(out))
        step, before = (candidate.root / STEP).read_text(), (good.root / STEP).read_text()
        verdict = "regression" if "extra work" in step.replace(before, "") else "no change"
        verdict = "candidate failed" if "not python" in step else verdict
        decision = {"regression": BAD, "no change": GOOD}.get(verdict, SKIP)
        verdicts = [
            Verdict(c.label, verdict, "tree", 0.01, 0.02, 4, 4,
                    2.0, 1.8, 2.2, 0.01, 0.99)
            for c in cells
        ]  # fmt: skip
        return Look(decision, verdict, tuple(verdicts), str(out), f"| table of {good.commit} |")


def _bisect(monkeypatch, judge, repo, tmp_path, *args, out="out"):
    monkeypatch.setattr(bisect_module, "judge_trees", judge)
    out = tmp_path / out
    code = main(["bisect", "--repo", str(repo.path), "-o", str(out), *args])
    doc = json.loads((out / "bisect.json").read_text())
    return code, doc, (out / "bisect.md").read_text()


def test_names_the_commit_whose_tree_slows_the_step(monkeypatch, repo, tmp_path, capsys):
    judge = TreeJudge()
    h = repo.hashes
    summary = tmp_path / "summary.md"
    summary.write_text("# Earlier step\n\n")
    extra = ["--json", str(tmp_path / "b.json"), "--summary", str(summary)]
    code, doc, md = _bisect(
        monkeypatch, judge, repo, tmp_path, "--good", h[0], "--bad", h[5], *extra
    )
    assert code == 0
    assert json.loads((tmp_path / "b.json").read_text()) == doc
    assert summary.read_text() == "# Earlier step\n\n" + md.rstrip("\n") + "\n\n"
    assert doc["state"] == "found" and doc["first_bad"]["commit"] == h[4]
    # The bad end, then the middle (broken: skipped), then the middle of what is left.
    assert [c[0] for c in judge.calls] == [h[5], h[2], h[3], h[4]]
    assert [s["decision"] for s in doc["steps"]] == ["bad", "skip", "good", "bad"]
    assert f"**First bad commit: `{h[4][:12]}` Extra work in the train step**" in md
    assert f"| table of {h[0]} |" in md
    assert md.strip() in capsys.readouterr().out
    assert (tmp_path / "out" / "sources" / h[4] / STEP).is_file()


def test_only_the_cells_that_regressed_are_bisected(monkeypatch, repo, tmp_path):
    judge = TreeJudge()

    def judge_some(good, candidate, cells, *rest, **kw):
        look = judge(good, candidate, cells, *rest, **kw)
        # Only the tiny model's cell regresses.
        kept = [v if "tiny" in v.cell else replace(v, verdict="no change") for v in look.verdicts]
        return replace(look, verdicts=tuple(kept))

    h = repo.hashes
    args = ["--good", h[0], "--bad", h[5], "--model", "tiny,reference"]
    code, doc, _ = _bisect(monkeypatch, judge_some, repo, tmp_path, *args)
    assert code == 0 and doc["first_bad"]["commit"] == h[4]
    assert len(judge.calls[0][1]) == 2  # the reproduction measures both cells
    assert all(len(c[1]) == 1 and "tiny" in c[1][0] for c in judge.calls[1:])


def test_stops_when_the_bad_end_is_not_slower(monkeypatch, repo, tmp_path, capsys):
    h = repo.hashes
    code, doc, md = _bisect(monkeypatch, TreeJudge(), repo, tmp_path, "--good", h[4], "--bad", h[5])
    assert code == 1
    assert doc["state"] == "not reproduced" and doc["first_bad"] is None
    assert [s["decision"] for s in doc["steps"]] == ["good"]
    assert "**Not reproduced**" in md and f"| table of {h[4]} |" in md
    assert "Not reproduced" in capsys.readouterr().err


def test_a_skipped_commit_next_to_the_first_bad_one_leaves_suspects(monkeypatch, tmp_path):
    repo = TapebenchRepo(tmp_path / "repo")
    broken_hash = repo.commit("Break the step", {STEP: broken})
    slow_hash = repo.commit("Mend it, with extra work", {STEP: lambda t: slow_step(mended(t))})
    args = ["--good", repo.good, "--bad", slow_hash]
    code, doc, md = _bisect(monkeypatch, TreeJudge(), repo, tmp_path, *args)
    assert code == 1 and doc["state"] == "ambiguous"
    assert [s["commit"] for s in doc["suspects"]] == [broken_hash, slow_hash]
    assert "**Undecided**: skipped commits leave 2 suspects" in md


def test_ctrl_c_keeps_what_was_measured_and_says_how_far_it_got(
    monkeypatch, repo, tmp_path, capsys
):
    h = repo.hashes
    judge = TreeJudge(interrupt_at=2)
    code, doc, md = _bisect(monkeypatch, judge, repo, tmp_path, "--good", h[0], "--bad", h[5])
    assert code == 130
    assert doc["state"] == "interrupted" and len(doc["steps"]) == 2
    assert [s["decision"] for s in doc["steps"]] == ["bad", "interrupted"]
    assert "**Stopped** after 2 step(s): the first bad commit is after" in md
    assert "(4 commit(s) untested)" in md
    assert len(judge.calls) == 2  # nothing more ran after the stop
    assert "stopped by SIGINT" in capsys.readouterr().err


def test_the_history_is_opened_only_after_the_input_is_checked(tmp_path, repo):
    db = tmp_path / "history.sqlite"
    result = run_cli(tmp_path, "bisect", "--good", "nosuch", "--repo", str(repo.path),
                     "--db", str(db), "-o", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 2 and not db.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--good", "nosuch"], "--good 'nosuch' is not a commit of the repository"),
        (["--good", "{0}", "--bad", "{0}"], "are the same commit"),
        (["--good", "{3}", "--bad", "{1}"], "--good '{3}' is not an ancestor of --bad '{1}'"),
        (["--good", "{1}", "--runs", "2"], "a paired interval needs 3 pairs or more"),
        (["--good", "{1}", "--repo", "{tmp}"], "not a git repository"),
        (["--good", "{1}", "--dataset", "cifar"], "expected a comma-separated list"),
        (["--good", "{1}", "--db", "mysql://h/db"], "only SQLite files and postgresql://"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    tmp_path, repo, args, message, capsys
):
    fill = {"tmp": str(tmp_path)}
    args = [a.format(*repo.hashes, **fill) for a in args]
    message = message.format(*repo.hashes)
    out = tmp_path / "out"
    try:
        code = main(["bisect", "--repo", str(repo.path), "-o", str(out), *args])
    except SystemExit as exc:  # argparse's own errors exit from inside the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_refuses_a_good_commit_off_the_first_parent_line(tmp_path, capsys):
    repo = TapebenchRepo(tmp_path / "repo")
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit("Side work", {"README.md": more_docs})
    repo.git("checkout", "-q", "main")
    repo.commit("Main work", {})
    repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side")
    args = ["bisect", "--repo", str(repo.path), "--good", side, "-o", str(tmp_path / "out")]
    assert main(args) == 2
    assert "not on the first-parent line" in capsys.readouterr().err


def test_refuses_a_non_empty_output_directory(tmp_path, repo, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("x")
    args = ["bisect", "--repo", str(repo.path), "--good", repo.hashes[1]]
    assert main([*args, "-o", str(tmp_path / "out")]) == 2
    assert "is not an empty directory" in capsys.readouterr().err


def test_a_steps_runs_and_verdicts_go_into_the_history(tmp_path, repo):
    # The candidate's runs name the judged commit, the baseline's the good one.
    out = tmp_path / "steps" / "c"
    label = ""
    for side, commit in (("baseline", repo.hashes[0]), ("candidate", repo.hashes[4])):
        store = ResultsDir(out / side).create()
        for i in range(4):
            fingerprint = {"git_commit": commit, "cpu_model": "x", "tensorflow": "2.21.0"}
            record = make_record(f"{side}-r{i}", repeat=i, fingerprint=fingerprint)
            store.write_run(record)
            label = cell_label(record.cell)
    verdict = Verdict(label, "regression", "+80%", 0.1, 0.18, 4, 4, 1.8, 1.5, 2.1, 0.01, 0.99)
    step = Step.from_look(3, Look(BAD, "slower", (verdict,), str(out)))
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        recorded = record_step(store, step, repo.hashes[4], repo.path, "bisect x")
        rows, verdicts = store.runs(), store.verdicts()
    assert recorded == ["bad"]
    assert sorted(rows["git_commit"]) == sorted([repo.hashes[0]] * 4 + [repo.hashes[4]] * 4)
    (row,) = verdicts.to_dict("records")
    assert (row["git_commit"], row["verdict"], row["source"]) == (repo.hashes[4], "bad", "bisect x")
    assert row["series_key"] in set(rows["series_key"])
