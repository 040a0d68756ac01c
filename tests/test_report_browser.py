"""report.html in a real headless Chromium (Debian's package, driven by Playwright; no browser download).

Skipped only where /usr/bin/chromium is absent and CI is not set; under CI a
missing Chromium or Playwright fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgdedup.review.report import render_report
from tests.test_report import EVIL, EVIL_ERROR, build_run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
N_CLUSTERS = 57  # two pages of 50


def _require_browser():
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    if IN_CI:
        import playwright.sync_api  # noqa: F401  (under CI a missing package is a failure)
    else:
        pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    import numpy as np

    tmp = tmp_path_factory.mktemp("browser")
    document, errors, run = build_run(tmp, n_clusters=N_CLUSTERS, similarity=True)
    distances = np.repeat(np.arange(0, 9), 5)
    summary = {"images scanned": 3 * N_CLUSTERS + 1, "unreadable": 1, "clusters": N_CLUSTERS}
    return render_report(
        document,
        errors,
        summary,
        run,
        pair_distances=distances,
        scores={"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 3, "fp": 0, "fn": 0},
    )


@pytest.fixture
def page(browser, report):
    """The report opened from its file:// URL; collects console errors, page errors and dialogs."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.problems = []
    tab.dialogs = []
    tab.on(
        "console",
        lambda msg: (
            tab.problems.append(f"console {msg.type}: {msg.text}") if msg.type in ("error", "warning") else None
        ),
    )
    tab.on("pageerror", lambda exc: tab.problems.append(f"page error: {exc}"))
    tab.on("requestfailed", lambda request: tab.problems.append(f"request failed: {request.url}"))

    def on_dialog(dialog):
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.goto(report.resolve().as_uri())
    tab.wait_for_selector("body[data-ready='1']")
    yield tab
    context.close()


def _settle(tab):
    tab.wait_for_load_state("load")
    tab.wait_for_timeout(200)


def test_loads_without_errors_and_shows_every_cluster(page, tmp_path):
    _settle(page)
    assert page.problems == [] and page.dialogs == []
    assert page.inner_text("#cluster-count") == str(N_CLUSTERS)
    assert page.locator("section.cluster").count() == 50
    assert "clusters 1\u201350 of 57, page 1 of 2" in page.inner_text("#page-info")
    assert page.locator("#summary").is_visible() and page.locator("#distance-plot .bar").count() == 11
    assert page.locator("#distance-plot .threshold").count() == 1
    assert page.locator("figure.keeper").count() == 50
    first = page.locator("section.cluster").first
    assert first.locator("figure .badge").inner_text() == "keeper"
    assert "distance 2 \u00b7 similarity 0.9871" in first.locator("figure").nth(1).inner_text()
    # thumbnails load from the file:// folder (the first ones on screen)
    page.wait_for_function(
        "() => { const i = document.querySelector('figure img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    page.click("#next")
    assert page.locator("section.cluster").count() == N_CLUSTERS - 50
    assert "page 2 of 2" in page.inner_text("#page-info")
    assert page.is_disabled("#next") and not page.is_disabled("#prev")
    shot = tmp_path / "report.png"
    page.click("#prev")
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.problems == []


def test_search_filters_by_file_name(page):
    page.fill("#search", "copy42")
    page.wait_for_function("() => document.getElementById('cluster-count').textContent === '1'")
    assert page.locator("section.cluster").count() == 1
    assert page.locator("section.cluster h3").inner_text().startswith("Cluster 42 ")
    assert page.locator("figure.match").count() == 1
    page.fill("#search", "COPIES/")  # folder part of the path, any case
    page.wait_for_function(f"() => document.getElementById('cluster-count').textContent === '{N_CLUSTERS}'")
    page.fill("#search", "no such file")
    page.wait_for_function("() => document.getElementById('cluster-count').textContent === '0'")
    assert page.locator("section.cluster").count() == 0 and page.inner_text("#page-info") == "no cluster matches"
    page.fill("#search", "")
    page.wait_for_function(f"() => document.getElementById('cluster-count').textContent === '{N_CLUSTERS}'")
    assert page.problems == []


def test_hostile_names_show_as_text(page):
    page.fill("#search", "onerror")
    page.wait_for_function("() => document.getElementById('cluster-count').textContent === '1'")
    names = page.locator("figure .path").all_inner_texts()
    assert EVIL in names
    assert page.locator("img[src='x']").count() == 0
    assert EVIL_ERROR in page.locator("#error-rows").inner_text()
    assert page.locator("#error-rows script").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.dialogs == [] and page.problems == []
    assert page.evaluate("() => document.title").startswith("imgdedup report")


def test_compare_two_members_side_by_side(page, tmp_path):
    figures = page.locator("section.cluster").first.locator("figure")
    figures.nth(0).click()
    assert figures.nth(0).get_attribute("class").split().count("selected") == 1
    figures.nth(1).click()
    overlay = page.locator("#compare")
    overlay.wait_for(state="visible")
    panes = overlay.locator(".pane")
    assert panes.count() == 2
    text = overlay.inner_text()
    assert "keeper" in text and "duplicate" in text and "resolution" in text and "file size" in text
    assert "similarity to keeper" in text and "0.9871" in text
    # both pictures load, at full size from the scanned folder
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    widths = page.evaluate("() => [...document.querySelectorAll('#compare img')].map(i => i.naturalWidth)")
    assert widths == [96, 96]
    page.screenshot(path=str(tmp_path / "compare.png"))
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    page.keyboard.press("Escape")
    overlay.wait_for(state="hidden")
    assert page.problems == [] and page.dialogs == []
