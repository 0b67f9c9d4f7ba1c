"""report.html in a real headless Chromium (Debian's package, driven by Playwright): the page
of a fixed run and of a failed run render, with no console error and no request anywhere;
the screenshots are kept as CI artifacts."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_pipeline import FIX, local, make_checkout, run_local
from tests.servers.llm import error, scripted

CHROMIUM = os.environ.get("ASTRAFORGE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = (
    Path(os.environ.get("ASTRAFORGE_CI_ARTIFACTS", Path(__file__).resolve().parents[2] / ".cache"))
    / "screenshots"
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run .ci/run (scripts/ci-setup) first")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def open_report(browser: Any, path: Path, name: str) -> tuple[Any, list[str], list[str]]:
    """The loaded page, its console errors, and every request it made but its own file."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if r.url != path.as_uri() else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    return page, errors, requests


def test_the_report_of_a_fixed_run(tmp_path: Path, browser: Any) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted(list(FIX)) as llm:
        _, report = run_local(tmp_path, llm, checkout, forge)
    assert report["conclusion"] == "fixed"
    page, errors, requests = open_report(browser, tmp_path / "out" / "report.html", "fixed")
    assert errors == []
    assert requests == []  # self-contained: nothing is fetched
    assert page.inner_text("#conclusion") == "fixed"
    assert "Average of an empty cart crashes" in page.inner_text("#task")
    diff = page.inner_text("#diff")
    assert "return total / len(items) if items else 0" in diff
    assert page.locator("#diff span").count() > 3  # highlighted by Pygments
    timeline = page.inner_text("#timeline")
    assert re.search(r"model call 1: \d+ \+ \d+ tokens", timeline)
    assert "read_file shop/cart.py" in timeline
    assert "edit_file shop/cart.py" in timeline
    assert page.locator("svg.chart rect").count() == 2 * len(FIX)  # tokens per turn
    assert "passed" in page.inner_text("#tests")
    assert "protected paths" in page.inner_text("#policy")
    page.click("#expand")
    assert page.locator("details[open]").count() == page.locator("details").count() > 0


def test_the_report_of_a_failed_run(tmp_path: Path, browser: Any) -> None:
    checkout = make_checkout(tmp_path)
    forge = local(tmp_path, checkout)
    with scripted([error(401, message="bad key")]) as llm:
        _, report = run_local(tmp_path, llm, checkout, forge)
    assert report["conclusion"] == "error"
    page, errors, requests = open_report(browser, tmp_path / "out" / "report.html", "failed")
    assert errors == []
    assert requests == []
    assert page.inner_text("#conclusion") == "error"
    assert "rejected the API key" in page.inner_text("#reason")
    assert page.inner_text("#diff") == "No change."
