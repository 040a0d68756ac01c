"""A whole review in headless Chromium (Debian's, through Playwright) on a real `find` run and a real server.

Choose a keeper other than the suggested one (keyboard), mark a pair not
duplicates, bulk-accept the exact tier, apply to the trash, check the files and
the journal, undo from the page, check the tree is byte-identical; then a
second run on the same store no longer shows the pair.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from imgdedup.actions import read_journal
from imgdedup.review.app import make_server
from tests.review_runs import EVIL, find_run, tree_bytes
from tests.test_report_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser


@pytest.fixture
def served(tmp_path):
    root, run, store = find_run(tmp_path)
    server, sock, url, session = make_server(run)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield root, run, store, url, session
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def tab():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.problems = []
        page.on("console", lambda msg: page.problems.append(msg.text) if msg.type in ("error", "warning") else None)
        page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("pageerror", lambda exc: page.problems.append(str(exc)))
        page.on("dialog", lambda dialog: (page.problems.append(f"dialog {dialog.message}"), dialog.dismiss()))
        yield page
        browser.close()


def _section(session, name):
    number = next(c["cluster"] for c in session.clusters if any(m["path"].endswith(name) for m in c["members"]))
    return number, f"#cluster-{number}"


def _ready(tab):
    tab.wait_for_selector("body[data-ready='1']")


def test_a_whole_review(served, tab, tmp_path):
    root, run, store, url, session = served
    original = tree_bytes(root)
    tab.goto(url)
    _ready(tab)
    assert "token=" not in tab.url  # the token moved into a cookie
    assert tab.locator("text=<img src=x onerror=alert(1)>.png").count() >= 1  # a hostile name, as text

    # keeper other than the suggested one, by keyboard: select the cluster, press its number
    b, b_sel = _section(session, "b.png")
    members = session.by_number[b]["members"]
    medium = next(k for k, m in enumerate(members) if m["path"].endswith("b-medium.png"))
    assert not members[medium]["keeper"]
    tab.click(f"{b_sel} h3")
    with tab.expect_navigation():
        tab.keyboard.press(str(medium + 1))
    _ready(tab)
    assert tab.locator(f"{b_sel} figure.keeper").inner_text().count("b-medium.png") == 1
    assert tab.locator(f"{b_sel}.current").count() == 1  # the focus stays on the cluster

    # a pair marked not duplicates: cluster c is c.png and the hostile name
    c, c_sel = _section(session, "c.png")
    assert len(session.by_number[c]["members"]) == 2
    tab.click(f"{c_sel} h3")
    with tab.expect_navigation():
        tab.keyboard.press("n")
    _ready(tab)
    assert "not duplicates" in tab.locator(f"{c_sel} .status").inner_text()

    # bulk: the exact tier; undo it by keyboard, then again
    a, a_sel = _section(session, "a.png")
    with tab.expect_navigation():
        tab.click("button.bulk-exact")
    _ready(tab)
    assert "decided" in tab.locator(f"{a_sel} .status").inner_text()
    with tab.expect_navigation():
        tab.keyboard.press("u")
    _ready(tab)
    assert "to review" in tab.locator(f"{a_sel} .status").inner_text()
    with tab.expect_navigation():
        tab.click("button.bulk-exact")
    _ready(tab)
    saved = json.loads((run / "decisions.json").read_text())
    assert saved["clusters"][str(b)]["keeper"] == "copies/b-medium.png"
    assert saved["clusters"][str(c)]["not_duplicates"] and saved["clusters"][str(a)]["done"]

    # compare: the full-size pictures, blink and difference
    tab.goto(f"{url.split('/?')[0]}/compare/{b}/{medium}")
    _ready(tab)
    tab.wait_for_function(
        "document.getElementById('img-1').complete && document.getElementById('img-2').naturalWidth > 0"
    )
    tab.click("#view-diff")
    assert tab.evaluate("document.getElementById('diff-canvas').width") == 640
    tab.click("#view-blink")
    tab.fill("#zoom", "2")
    tab.go_back()
    tab.go_back()
    _ready(tab)

    # apply to the trash: the dry run first, then confirm
    tab.select_option("#apply-action", "delete")
    with tab.expect_navigation():
        tab.click("#apply-preview")
    summary = tab.locator("#dry-run-summary").inner_text()
    assert "Dry run: 3 files" in summary, summary
    assert tree_bytes(root) == original
    with tab.expect_navigation():
        tab.click("#apply-confirm")
    assert "Done: 3 files" in tab.locator("#applied-summary").inner_text()
    gone = {p for p in original if not (root / p).exists()}
    a_copy = next(m["path"] for m in session.by_number[a]["members"] if not m["keeper"])  # the suggestion stays
    assert gone == {"originals/b.png", "copies/b-small.png", a_copy}
    assert (root / "copies" / EVIL).exists() and (root / "originals" / "c.png").exists()
    journals = sorted(run.glob("journal-*.jsonl"))
    assert len(journals) == 1
    done = [r for r in read_journal(journals[0]) if r.get("type") == "done"]
    assert len(done) == 3

    # undo from the page
    with tab.expect_navigation():
        tab.click("#undo-apply")
    assert "Undone: 3 files restored; 0 problems" in tab.locator("#undo-summary").inner_text()
    assert tree_bytes(root) == original
    assert tab.problems == []

    # a second run on the same store does not show the pair marked not duplicates
    _, run2, _ = find_run(tmp_path, "run2", store=store)
    document = json.loads((run2 / "clusters.json").read_text())
    together = [
        c for c in document["clusters"] if {m["path"] for m in c["members"]} >= {"originals/c.png", f"copies/{EVIL}"}
    ]
    assert together == [] and document["suppressed_pairs"] == 1
    assert json.loads((run2 / "summary.json").read_text())["suppressed_pairs"] == 1
