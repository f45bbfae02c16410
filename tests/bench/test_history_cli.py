"""tapebench history add / list / check / report, on histories of a real git repository."""

from __future__ import annotations

import json
import shutil

import pytest

from bench.cli import main
from tests.bench.history_factories import git_repo, step_history
from tests.bench.test_cli import run_cli

pytest.importorskip("otava.analysis", reason="needs apache-otava (pip install --no-deps)")

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CONTROL = "xla/float32@cpu"


@pytest.fixture
def commits(tmp_path):
    return git_repo(tmp_path / "repo", 14)


def history(tmp_path, commits, *dir_groups):
    db = str(tmp_path / "h.sqlite")
    dirs = [str(d) for group in dir_groups for d in group]
    assert main(["history", "add", *dirs, "--db", db, "--repo", str(tmp_path / "repo")]) == 0
    return db


def test_a_step_is_found_at_its_commit_and_fails_the_check(tmp_path, commits, capsys):
    db = history(tmp_path, commits, step_history(tmp_path / "r", commits, step_at=9))
    out = tmp_path / "check.json"
    assert main(["history", "check", "--db", db, "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"{commits[8][:8]}..{commits[9][:8]}: +" in text and "**regression**" in text
    doc = json.loads(out.read_text())
    (series,) = doc["series"]
    (change,) = series["change_points"]
    assert doc["regression"] and series["verdict"] == "regression"
    assert change["commit"] == commits[9] and change["before"] == commits[8]
    assert change["direction"] == "slower"
    assert change["ratio_low"] < 1.2 < change["ratio_high"] and change["ratio_low"] > 1.1
    assert series["commits"] == commits and series["runs"] == 42


def test_the_threshold_decides_what_fails(tmp_path, commits):
    db = history(tmp_path, commits, step_history(tmp_path / "r", commits, step_at=9))
    assert main(["history", "check", "--db", db, "--threshold", "0.5"]) == 0


def test_a_control_that_moves_alike_makes_a_runner_shift(tmp_path, commits, capsys):
    cell = step_history(tmp_path / "r", commits, step_at=9, seed=1)
    control = step_history(tmp_path / "r", commits, step_at=9, step=0.15, seed=2, mode="xla")
    db = history(tmp_path, commits, cell, control)
    assert main(["history", "check", "--db", db]) == 1  # no control named: two regressions
    capsys.readouterr()
    assert main(["history", "check", "--db", db, "--control", CONTROL]) == 0
    text = capsys.readouterr().out
    assert "| runner shift |" in text and "| control: regression |" in text


def test_a_still_control_leaves_the_regression(tmp_path, commits):
    cell = step_history(tmp_path / "r", commits, step_at=9, seed=1)
    control = step_history(tmp_path / "r", commits, step_at=None, seed=2, mode="xla")
    db = history(tmp_path, commits, cell, control)
    assert main(["history", "check", "--db", db, "--control", CONTROL]) == 1


def test_noise_only_passes_and_lists(tmp_path, commits, capsys):
    db = history(tmp_path, commits, step_history(tmp_path / "r", commits, step_at=None))
    assert main(["history", "check", "--db", db]) == 0
    assert "| no change point |" in capsys.readouterr().out
    assert main(["history", "list", "--db", db]) == 0
    assert f"14 commit(s) {commits[0][:8]}..{commits[-1][:8]}, 42 run(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "--db", "missing.sqlite"], "missing.sqlite: no history there"),
        (["check", "--control", "eager/float32@cpu"], "--control 'eager/float32@cpu' names no"),
        (["check", "--threshold", "0"], "threshold=0.0 must be a positive fraction"),
        (["add", "nowhere"], "nowhere: no such file or directory"),
        (["check", "--db", "mysql://x/y"], "only SQLite files and postgresql:// URLs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, commits, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    history(tmp_path, commits, step_history(tmp_path / "r", commits, step_at=None))
    (tmp_path / "h.sqlite").rename(tmp_path / "tapebench-history.sqlite")
    capsys.readouterr()
    assert main(["history", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_run_file_adds_nothing(tmp_path, commits):
    dirs = step_history(tmp_path / "r", commits, step_at=None)
    (dirs[-1] / "runs" / "zz-broken.json").write_text('{"schema_version": 1, "kind": "tape')
    result = run_cli(tmp_path, "history", "add", *map(str, dirs), "--db", "h.sqlite", timeout=300)
    assert result.returncode == 2
    assert "zz-broken.json: corrupt or truncated JSON" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "h.sqlite").exists()


@pytest.fixture
def trend_page(tmp_path, commits):
    cell = step_history(tmp_path / "r", commits, step_at=9)
    control = step_history(tmp_path / "r", commits, step_at=None, seed=2, mode="xla")
    db = history(tmp_path, commits, cell, control)
    page = tmp_path / "trend.html"
    assert main(["history", "report", "--db", db, "--html", str(page), "--control", CONTROL]) == 0
    return page


def test_the_trend_page_names_commits_and_change_points(trend_page, commits):
    text = trend_page.read_text()
    assert text.count('<section id="series-') == 2
    assert text.count("data:image/png;base64,") == 2
    assert f"{commits[8][:8]}..{commits[9][:8]}: +" in text
    assert '<b class="verdict">regression</b>' in text
    assert '<b class="verdict">control: no change point</b>' in text
    assert all(c[:8] in text for c in commits)


@pytest.mark.browser
@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs `apt-get install chromium chromium-driver`"
)
def test_headless_chromium_shows_the_trend(trend_page, commits):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(trend_page.as_uri())
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 2
        for img in images:
            assert driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 300", img
            ), img.get_attribute("alt")
        table = driver.find_element(By.ID, "commits-0")
        assert table.is_displayed()
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 14
        assert commits[9][:8] in rows[9].text and "slower" in rows[9].text
        assert "2023-11-14T23:13:20+00:00" in rows[1].text and "main" in rows[1].text
    finally:
        driver.quit()


def test_runs_that_name_no_commit_take_the_one_given(tmp_path, commits, capsys):
    from tests.bench.history_factories import write_runs

    results = write_runs(tmp_path / "r", commits[3], [0.02, 0.021])
    for path in (results / "runs").glob("*.json"):  # as from a tree without a commit marker
        doc = json.loads(path.read_text())
        doc["run"]["fingerprint"]["git_commit"] = None
        path.write_text(json.dumps(doc))
    repo, db = str(tmp_path / "repo"), str(tmp_path / "h.sqlite")
    add = ["history", "add", str(results), "--db", db, "--repo", repo]
    assert main([*add, "--commit", "no-such-rev"]) == 2
    assert "--commit 'no-such-rev' is not a commit of the repository" in capsys.readouterr().err
    assert main([*add, "--commit", "HEAD~10"]) == 0
    assert main(["history", "list", "--db", db]) == 0
    assert f"1 commit(s) {commits[3][:8]}..{commits[3][:8]}, 2 run(s)" in capsys.readouterr().out
