"""The HTML report: self-contained, and shown correctly by a real (headless) browser."""

from __future__ import annotations

import base64
import re
import shutil
from html.parser import HTMLParser

import pytest

from reports.frames import Results
from reports.html import html_report
from reports.report import ReportOptions, build_report
from tests.reports.factories import epochs_of, make_record

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs["src"])
        if tag in ("link", "script") and (attrs.get("href") or attrs.get("src")):
            self.links.append(attrs.get("href") or attrs.get("src"))


@pytest.fixture
def page(tmp_path):
    curve = epochs_of((10.0, 10.0), (1.0, 1.0), (0.6, 0.9))
    records = [
        make_record(
            "e", timed=(0.5, 0.55, 0.6), mode="eager", epochs=curve, dataset="fashion_mnist"
        ),
        make_record(
            "f", timed=(0.1, 0.12, 0.3), epochs=curve, dataset="fashion_mnist", eval_first=1.0
        ),
        make_record(
            "g", status="skipped", reason="no GPU visible", device="gpu", dataset="fashion_mnist"
        ),
        make_record("e2", timed=(0.9, 1.0), mode="eager", dataset="fashion_mnist", batch_size=20),
        make_record("f2", timed=(0.2, 0.25), dataset="fashion_mnist", batch_size=20),
    ]
    report = build_report(Results.from_records(records), ReportOptions(target_accuracy=0.85))
    path = tmp_path / "report.html"
    path.write_text(html_report(report), encoding="utf-8")
    return path


def test_page_is_self_contained_with_embedded_pngs(page):
    text = page.read_text()
    parser = _Images()
    parser.feed(text)
    assert parser.links == []  # nothing fetched from elsewhere
    assert len(parser.sources) >= 5  # every kind of figure
    for src in parser.sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for section in ("Timings", "Geometric-mean speedups", "Warnings", "Figures", "Environment"):
        assert f"<h2>{section}</h2>" in text
    assert re.search(r'<table id="summary-0">.*function/float32@cpu', text, re.S)
    assert re.search(
        r'<table id="geomeans">.*function/float32@cpu</td><td class="r">2</td>', text, re.S
    )
    assert re.search(
        r'<table id="geomeans">.*function/float32@cpu</td><td class="r">2</td>', text, re.S
    )
    assert "Time to 85% s" in text


@pytest.mark.browser
@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs `apt-get install chromium chromium-driver`"
)
def test_headless_chromium_shows_the_table_and_loads_every_image(page):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(page.as_uri())
        table = driver.find_element(By.ID, "summary-0")
        assert table.is_displayed()
        assert "function/float32@cpu" in table.text and "4.58×" in table.text
        assert "skipped: no GPU visible" in table.text
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 5
        for img in images:
            loaded = driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", img
            )
            assert loaded, img.get_attribute("alt")
            assert img.size["width"] > 100
        assert driver.find_element(By.ID, "warnings").is_displayed()
    finally:
        driver.quit()
