"""report.html without a browser: escaping, the data block, the plot, thumbnails, offline-only content."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgdedup.imaging.discover import content_digest
from imgdedup.review.report import (
    display_name,
    distance_histogram_svg,
    human_bytes,
    json_for_script,
    render_report,
)
from imgdedup.sample import random_scene

EVIL = "<img src=x onerror=alert(1)>.png"
EVIL_ERROR = "<script>alert(1)<!--.jpg"


def build_run(
    tmp_path: Path, n_clusters: int = 3, size: tuple[int, int] = (96, 72), seed: int = 0, similarity: bool = False
) -> tuple[dict, list, Path]:
    """Real image files in clusters of three (keeper, PNG copy, half-size copy); cluster 1 holds ``EVIL``.

    ``similarity``: members also carry a cosine similarity to the keeper, as a cnn run writes.

    Returns ``(clusters document, errors, run folder)``.
    """
    root = tmp_path / "photos"
    (root / "copies").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    clusters = []
    for number in range(1, n_clusters + 1):
        image = random_scene(rng, size)
        names = [f"photo{number}.jpg", f"copies/copy{number}.png", f"small{number}.jpg"]
        if number == 1:
            names.append(EVIL)
        members = []
        for k, name in enumerate(names):
            picture = image.resize((size[0] // 2, size[1] // 2)) if k == 2 else image
            path = root / name
            picture.save(path, "PNG" if name.endswith(".png") else "JPEG")
            data = path.read_bytes()
            members.append(
                {
                    "path": name,
                    "keeper": k == 0,
                    "distance": [0, 2, 4, 6][k],
                    "width": picture.width,
                    "height": picture.height,
                    "bytes": len(data),
                    "format": "PNG" if name.endswith(".png") else "JPEG",
                    "digest": content_digest(data),
                }
            )
            if similarity:
                members[-1]["similarity"] = [1.0, 0.9871, 0.9512, 0.93][k]
        clusters.append(
            {
                "cluster": number,
                "keeper": names[0],
                "reclaimable_bytes": sum(m["bytes"] for m in members[1:]),
                "members": members,
            }
        )
    (root / EVIL_ERROR).write_bytes(b"nope")
    document = {"root": str(root), "method": "phash", "threshold": 10, "clusters": clusters}
    errors = [(EVIL_ERROR, "not an image (Pillow cannot identify the content)")]
    return document, errors, tmp_path / "run"


def page_data(page: str) -> dict:
    match = re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", page, re.S)
    assert match, "no data block"
    return json.loads(match.group(1))


def test_names_are_never_markup(tmp_path):
    document, errors, run = build_run(tmp_path)
    page = render_report(document, errors, {"folder": document["root"], EVIL: EVIL}, run).read_text()
    # only the two scripts of the page: the JSON data block and the code
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<img" not in page and "<!--" not in page
    assert html.escape(EVIL) in page  # the summary row is server-rendered, escaped
    data = page_data(page)  # the names survive, as data
    assert any(m[0] == EVIL for c in data["clusters"] for m in c[2])
    assert data["errors"][0][0] == EVIL_ERROR
    block = page.split("id='report-data'>", 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    assert "innerHTML" not in page and "outerHTML" not in page and "insertAdjacentHTML" not in page
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_content_security_policy_allows_only_the_page_script(tmp_path):
    document, errors, run = build_run(tmp_path)
    page = render_report(document, errors, {}, run).read_text()
    csp = re.search(r"http-equiv='Content-Security-Policy' content=\"([^\"]+)\"", page).group(1)
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    code = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    expected = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{expected}'" in csp


def test_json_for_script_round_trips_anything():
    value = {"a": "</script><!-- & \u2028 \udce9 >", "b": [1, 2.5, None, True]}
    text = json_for_script(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_clusters_sorted_by_reclaimable_bytes_with_all_fields(tmp_path):
    document, errors, run = build_run(tmp_path, n_clusters=6)
    data = page_data(render_report(document, errors, {}, run).read_text())
    reclaimable = [c[1] for c in data["clusters"]]
    assert reclaimable == sorted(reclaimable, reverse=True)
    assert sorted(c[0] for c in data["clusters"]) == list(range(1, 7))
    by_number = {c["cluster"]: c for c in document["clusters"]}
    for number, _, members in data["clusters"]:
        for row, member in zip(members, by_number[number]["members"]):
            name, folder, width, height, fmt, size, distance, keeper, thumb, digest = row[:10]
            assert data["folders"][folder][0] + name == member["path"]
            assert (width, height, data["formats"][fmt], size, distance, keeper, digest) == (
                member["width"],
                member["height"],
                member["format"],
                member["bytes"],
                member["distance"],
                int(member["keeper"]),
                member["digest"],
            )
            assert thumb == 1
    assert data["rootUrl"] == Path(document["root"]).as_uri() + "/"


def test_thumbnails_are_made_once_per_digest(tmp_path):
    document, errors, run = build_run(tmp_path, n_clusters=2)
    render_report(document, errors, {}, run)
    digests = {m["digest"] for c in document["clusters"] for m in c["members"]}
    thumbs = sorted((run / "thumbs").iterdir())
    assert [p.name for p in thumbs] == sorted(f"{d}-160.jpg" for d in digests)
    for path in thumbs:
        with Image.open(path) as image:
            assert max(image.size) <= 160
    times = {p.name: p.stat().st_mtime_ns for p in thumbs}
    render_report(document, errors, {}, run)  # a re-render reuses them
    assert {p.name: p.stat().st_mtime_ns for p in (run / "thumbs").iterdir()} == times
    render_report(document, errors, {}, run, thumbnail_size=64)
    assert len(list((run / "thumbs").glob("*-64.jpg"))) == len(digests)


def test_unreadable_member_has_no_thumbnail(tmp_path):
    document, errors, run = build_run(tmp_path, n_clusters=1)
    victim = document["clusters"][0]["members"][1]
    (Path(document["root"]) / victim["path"]).write_bytes(b"gone bad")
    data = page_data(render_report(document, errors, {}, run).read_text())
    rows = {m[0]: m for m in data["clusters"][0][2]}
    assert rows[os.path.basename(victim["path"])][8] == 0
    assert not (run / "thumbs" / f"{victim['digest']}-160.jpg").exists()


def test_summary_plot_and_scores(tmp_path):
    document, errors, run = build_run(tmp_path, n_clusters=1)
    distances = np.array([0, 0, 1, 3, 3, 3, 10], dtype=np.int64)
    summary = {"images scanned": 42, "seconds per stage": {"hash": 1.5, "index": 0.25}}
    scores = {"precision": 0.95, "recall": 1.0, "f1": 0.974, "tp": 19, "fp": 1, "fn": 0}
    page = render_report(document, errors, summary, run, pair_distances=distances, scores=scores).read_text()
    assert "<td>images scanned</td><td>42</td>" in page
    assert "<td>seconds per stage</td><td>hash 1.50, index 0.25</td>" in page
    assert "Pair distances (7 pairs)" in page
    svg = re.search(r"<svg id='distance-plot'.*?</svg>", page, re.S).group(0)
    assert svg.count("class='bar'") == 11  # one bar per distance 0..10
    assert "distance 3: 3 pairs" in svg and "distance 0: 2 pairs" in svg and "distance 5: 0 pairs" in svg
    assert "class='threshold'" in svg and "threshold &#8804; 10" in svg
    assert "<td>precision</td><td>0.9500</td>" in page and "<td>recall</td><td>1.0000</td>" in page
    assert "tp 19, fp 1, fn 0" in page
    plain = render_report(document, errors, summary, run).read_text()
    assert "distance-plot" not in plain and "id='scores'" not in plain


def test_members_with_similarity(tmp_path):
    document, errors, run = build_run(tmp_path, n_clusters=1, similarity=True)
    data = page_data(render_report(document, errors, {}, run).read_text())
    assert [m[10] for m in data["clusters"][0][2]] == [1, 0.9871, 0.9512, 0.93]
    document, errors, run = build_run(tmp_path / "plain", n_clusters=1)
    data = page_data(render_report(document, errors, {}, run).read_text())
    assert [m[10] for m in data["clusters"][0][2]] == [None] * 4


def test_similarity_plot():
    svg = distance_histogram_svg(np.linspace(0.9, 1.0, 50), 0.9, "cosine similarity", similarity=True)
    assert svg.count("class='bar'") == 40 and "threshold &#8805; 0.9" in svg and "cosine similarity" in svg
    assert "No pair" in distance_histogram_svg(np.zeros(0), 10)


def test_non_utf8_name(tmp_path):
    document, errors, run = build_run(tmp_path, n_clusters=1)
    raw = os.fsencode(document["root"]) + b"/copies/r\xe9sum\xe9.jpg"
    member = dict(document["clusters"][0]["members"][0])
    os.rename(os.fsencode(document["root"]) + b"/" + os.fsencode(member["path"]), raw)
    member["path"] = os.fsdecode(b"copies/r\xe9sum\xe9.jpg")
    document["clusters"][0]["members"][0] = member
    data = page_data(render_report(document, errors, {}, run).read_text())
    row = data["clusters"][0][2][0]
    assert row[0] == "r\ufffdsum\ufffd.jpg" and row[11] == "r%E9sum%E9.jpg" and row[8] == 1
    assert display_name(member["path"]) == "copies/r\ufffdsum\ufffd.jpg"


@pytest.mark.parametrize(
    "n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KB"), (1536, "1.5 KB"), (5 * 1024**3, "5.0 GB")]
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text
