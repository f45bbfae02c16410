"""``tapebench bisect`` end to end: a throwaway repository of tapebench trees whose one
commit slows the training step, real A/Bs of real runs, and the commit named."""

import json

import pytest

from bench.history.store import HistoryStore
from reports.sides import load_side
from tests.bench.bisect_repo import STEP, TapebenchRepo, more_docs, slow_step
from tests.bench.test_cli import run_cli


@pytest.mark.slow  # three A/Bs of 8 runs or more: 3-5 minutes on a shared 2-core machine
def test_names_the_commit_that_slows_the_step(tmp_path):
    repo = TapebenchRepo(tmp_path / "repo")
    docs = repo.commit("Docs: a line", {"README.md": more_docs})
    slow = repo.commit("Extra work in the train step", {STEP: slow_step})
    bad = repo.commit("Docs: another line", {"README.md": more_docs})
    out, db = tmp_path / "out", tmp_path / "history.sqlite"
    result = run_cli(
        tmp_path,
        *["bisect", "--good", repo.good, "--bad", bad, "--repo", str(repo.path)],
        *["--model", "tiny", "--steps-per-epoch", "20", "--warmup-steps", "5"],
        # The extra work makes the tiny step several times slower. A wide band (a third
        # to three times the good step) keeps "no change" robust on a busy machine, while
        # a regression needs at least twice the good step (half the band), far below the
        # slowdown; 4 to 8 pairs a step.
        *["--threshold", "2.0", "--min-pairs", "4", "--look-every", "2", "--max-pairs", "8"],
        *["-o", str(out), "--db", str(db)],
        timeout=900,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"**First bad commit: `{slow[:12]}` Extra work in the train step**" in result.stdout
    doc = json.loads((out / "bisect.json").read_text())
    assert doc["first_bad"]["commit"] == slow
    # The bad end reproduces; then the middle (docs: good), then what is left (slow: bad).
    assert [(s["commit"], s["decision"]) for s in doc["steps"]] == [
        (bad, "bad"),
        (docs, "good"),
        (slow, "bad"),
    ]
    lines = [line for line in result.stderr.splitlines() if "tapebench: step " in line]
    assert len(lines) == 3 and slow[:12] in lines[2] and "regression" in lines[2]
    # Each A/B is a pair of ordinary results directories of the two commits.
    step = out / doc["steps"][2]["results"]
    base, cand = (load_side(step / side) for side in ("baseline", "candidate"))
    commits = {
        side: {r["run"]["fingerprint"]["git_commit"] for r in _records(step / side)}
        for side in ("baseline", "candidate")
    }
    assert commits == {"baseline": {repo.good}, "candidate": {slow}}
    assert len(next(iter(cand.cells.values())).finished) >= 4 and base.cells
    with HistoryStore.open(str(db)) as store:
        verdicts = store.verdicts()
        runs = store.runs()
    assert [(v.git_commit, v.verdict) for v in verdicts.itertuples()] == [
        (bad, "bad"),
        (docs, "good"),
        (slow, "bad"),
    ]
    assert set(runs["git_commit"]) == {repo.good, bad, docs, slow}


def _records(results):
    return [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
