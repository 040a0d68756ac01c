"""The review app over HTTP (Starlette's test client on a real `find` run): decisions, apply, and each refusal."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from imgdedup.review.app import create_app
from imgdedup.review.session import ReviewSession
from imgdedup.storage.store import Store
from tests.review_runs import EVIL, find_run, tree_bytes

PORT = 8123
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "s3cret-token-for-the-tests-0123"


@pytest.fixture
def review(tmp_path):
    root, run, store = find_run(tmp_path)
    session = ReviewSession(run)
    client = TestClient(create_app(session, TOKEN, PORT), base_url=BASE, follow_redirects=False)
    answer = client.get(f"/?token={TOKEN}")
    assert answer.status_code == 303 and "token" not in answer.headers["location"]
    return client, session, root, run, store


def post(client, path, origin=BASE, **fields):
    fields.setdefault("token", TOKEN)
    headers = {"Origin": origin} if origin else {}
    return client.post(path, data=fields, headers=headers)


def member_index(session, number, name):
    return next(k for k, m in enumerate(session.by_number[number]["members"]) if m["path"].endswith(name))


def cluster_of(session, name):
    return next(c["cluster"] for c in session.clusters if any(m["path"].endswith(name) for m in c["members"]))


def test_refusals(review, tmp_path):
    client, session, root, run, _ = review
    fresh = TestClient(client.app, base_url=BASE, follow_redirects=False)
    assert fresh.get("/clusters").status_code == 403  # no token
    assert "no token" in fresh.get("/clusters").text
    assert fresh.get("/clusters?token=wrong").status_code == 403  # wrong token
    fresh.cookies.set(f"imgdedup_review_{PORT}", "wrong")
    assert fresh.get("/clusters").status_code == 403
    assert (
        TestClient(client.app, base_url="http://evil.example:8123").get(f"/?token={TOKEN}").status_code == 403
    )  # other host
    assert fresh.get(f"{BASE}//evil.example/?token={TOKEN}").headers["location"] == "/evil.example/"  # stays here
    number = session.clusters[0]["cluster"]
    before = (run / "decisions.json").exists()
    # another origin, no origin, and a form without the token: each refused, nothing saved
    assert post(client, "/decide", origin="http://evil.example", cluster=number, op="done").status_code == 403
    assert post(client, "/decide", origin=None, cluster=number, op="done").status_code == 403
    assert post(client, "/decide", token="", cluster=number, op="done").status_code == 403
    # a GET that tries to change state
    assert client.get(f"/decide?cluster={number}&op=done&token={TOKEN}", follow_redirects=True).status_code == 405
    assert client.get(f"/decide?cluster={number}&op=done").status_code == 405
    assert client.get("/undo").status_code == 405 and client.get("/apply?action=delete").status_code == 200
    assert (run / "decisions.json").exists() == before and not session.decisions["clusters"]
    # paths: the app never takes one from the request
    assert client.get("/image/1/99").status_code == 404
    assert client.get("/image/..%2F..%2Fetc%2Fpasswd/0").status_code in (404, 422)
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/thumb/999/0").status_code == 404
    outside = tmp_path / "secret.png"
    outside.write_bytes((root / "lone.png").read_bytes())
    session.by_number[number]["members"][0]["path"] = "../secret.png"  # a tampered record stays inside the root
    assert client.get(f"/image/{number}/0").status_code == 404


def test_pages_show_names_as_text_and_serve_run_files(review):
    client, session, root, run, _ = review
    page = client.get("/clusters")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    assert EVIL not in page.text and "&lt;img src=x onerror=alert(1)&gt;.png" in page.text
    assert "tier-exact" in page.text and "tier-near" in page.text and "id='no-store'" not in page.text
    number = cluster_of(session, EVIL)
    k = member_index(session, number, EVIL)
    assert client.get(f"/image/{number}/{k}").content == (root / "copies" / EVIL).read_bytes()
    assert client.get(f"/thumb/{number}/{k}").headers["content-type"] == "image/jpeg"
    compare = client.get(f"/compare/{number}/{k}")
    assert compare.status_code == 200 and "view-diff" in compare.text and EVIL not in compare.text


def test_decisions_store_pairs_undo_and_apply(review):
    client, session, root, run, store = review
    original = tree_bytes(root)
    b = cluster_of(session, "b.png")
    medium = member_index(session, b, "b-medium.png")
    assert post(client, "/decide", cluster=b, op="keeper", member=medium).status_code == 303
    small = member_index(session, b, "b-small.png")
    post(client, "/decide", cluster=b, op="apart", member=small)
    saved = json.loads((run / "decisions.json").read_text())
    assert saved["clusters"][str(b)]["keeper"] == "copies/b-medium.png"
    assert saved["clusters"][str(b)]["apart"] == ["copies/b-small.png"]
    assert len(Store(store).not_duplicates()) == 2  # b-small against the two others
    post(client, "/undo")
    assert Store(store).not_duplicates() == set() and session.decisions["clusters"][str(b)]["apart"] == []
    post(client, "/decide", cluster=b, op="apart", member=small)
    post(client, "/bulk", scope="exact")
    a = cluster_of(session, "a.png")
    assert session.decisions["clusters"][str(a)]["done"]
    c = cluster_of(session, "c.png")
    assert str(c) not in session.decisions["clusters"] or not session.is_exact(session.by_number[c])
    preview = client.get("/apply?action=delete")
    assert preview.status_code == 200 and "Dry run" in preview.text
    assert tree_bytes(root) == original
    answer = post(client, "/apply", action="delete")
    assert answer.status_code == 303
    assert not (root / "originals" / "b.png").exists() and (root / "copies" / "b-medium.png").exists()
    assert (root / "copies" / "b-small.png").exists()  # marked not a duplicate: untouched
    assert len(list(run.glob("journal-*.jsonl"))) == 1
    done = client.get(answer.headers["location"])
    assert "undo-apply" in done.text
    post(client, answer.headers["location"].replace("/applied/", "/undo-apply/"))
    assert tree_bytes(root) == original


def test_apply_decisions_from_the_command_line(review):
    from click.testing import CliRunner

    from imgdedup.cli.main import main

    client, session, root, run, _ = review
    original = tree_bytes(root)
    b = cluster_of(session, "b.png")
    post(client, "/decide", cluster=b, op="keeper", member=member_index(session, b, "b-small.png"))
    post(client, "/folder", cluster=b, member=member_index(session, b, "b-medium.png"))  # copies/ is a reference folder
    dry = CliRunner().invoke(main, ["apply", str(run), "--action", "delete", "--decisions"])
    assert dry.exit_code == 0, dry.output
    assert "would be: 1 file" in dry.output and tree_bytes(root) == original
    done = CliRunner().invoke(main, ["apply", str(run), "--action", "delete", "--decisions", "--yes"])
    assert done.exit_code == 0, done.output
    # copies/ is always kept, so its files are the keepers and only originals/b.png goes
    assert not (root / "originals" / "b.png").exists() and (root / "copies" / "b-small.png").exists()
    usage = CliRunner().invoke(main, ["apply", str(run), "--action", "delete", "--decisions", "--keep", "largest"])
    assert usage.exit_code == 2 and "--keep does not go with --decisions" in usage.output


def test_review_command_is_documented():
    from click.testing import CliRunner

    from imgdedup.cli.main import main

    result = CliRunner().invoke(main, ["review", "--help"])
    assert result.exit_code == 0 and "127.0.0.1" in result.output and "--no-browser" in result.output


def test_ten_thousand_clusters_stay_responsive(tmp_path):
    """Each page renders its own 20 clusters only; a bulk accept of all 10k is one write and one undo."""
    import time

    run = tmp_path / "big"
    run.mkdir()
    clusters = []
    for n in range(1, 10_001):
        members = [
            {
                "path": f"f{n}/m{k}.jpg",
                "keeper": k == 0,
                "distance": k,
                "width": 100,
                "height": 100,
                "bytes": 1000 + k,
                "format": "JPEG",
                "digest": f"{n:08x}{k:02x}",
                "tier": "keeper" if k == 0 else "near",
            }
            for k in range(3)
        ]
        clusters.append({"cluster": n, "keeper": members[0]["path"], "reclaimable_bytes": n, "members": members})
    (run / "clusters.json").write_text(
        json.dumps({"root": str(tmp_path / "none"), "clusters": clusters, "store": None})
    )
    session = ReviewSession(run)
    client = TestClient(create_app(session, TOKEN, PORT), base_url=BASE)
    client.get(f"/?token={TOKEN}")
    for page in (0, 250, 499):
        started = time.perf_counter()
        answer = client.get(f"/clusters?page={page}")
        assert time.perf_counter() - started < 2.0
        assert answer.text.count("<section") == 20 and f"page {page + 1} of 500" in answer.text
    first = client.get("/clusters?page=0").text
    assert "cluster-10000" in first  # most reclaimable first
    assert "id='no-store'" in first  # this run names no store: the page says where "not duplicates" goes
    post(client, "/bulk", scope="all")
    assert session.counts()["decided"] == 10_000
    post(client, "/undo")
    assert session.counts()["decided"] == 0 and json.loads((run / "decisions.json").read_text())["clusters"] == {}
