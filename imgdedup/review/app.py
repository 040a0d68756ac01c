"""``imgdedup review RUN_DIR``: a local web app to decide on a run's clusters and act on them.

FastAPI (Starlette) served by uvicorn on 127.0.0.1, pages rendered from the
Jinja2 templates of :mod:`imgdedup.review.templating` (autoescaped: a file name
is always text), the state in :class:`imgdedup.review.session.ReviewSession`.

Security, since the page can move files:

* bound to 127.0.0.1, and only requests whose ``Host`` is this server are served
  (a DNS-rebinding page cannot reach it through another name);
* every request needs the secret token: the printed URL carries it once
  (``?token=``), the answer sets it as a ``SameSite=Strict`` HttpOnly cookie and
  redirects to the same URL without it;
* a request that changes anything is a POST whose ``Origin`` is this server and
  whose form carries the token too; the routes that change state accept no GET;
* pictures are named by cluster number and member index; the app serves only the
  run's thumbnails and the files the run recorded (inside the root, not links),
  never a path from the request;
* a Content-Security-Policy allows only this server's own scripts and styles.
"""

from __future__ import annotations

import io
import os
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response

from imgdedup.errors import ImgdedupError
from imgdedup.review.report import display_name, evidence_words, human_bytes
from imgdedup.review.session import KNOWN_FIELDS, ReviewSession
from imgdedup.review.templating import environment, static_text

PAGE = 20
ACTIONS = ("delete", "move", "hardlink", "symlink")
STATIC = {"review.css": "text/css", "review.js": "text/javascript"}
MAX_FORM = 64 * 1024
CSP = (
    "default-src 'none'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _refuse(status: int, why: str) -> PlainTextResponse:
    return PlainTextResponse(f"refused: {why}\n", status_code=status)


@dataclass(frozen=True)
class _Guard:
    """What every request is checked against."""

    session: ReviewSession
    token: str
    hosts: frozenset[str]
    origins: frozenset[str]
    cookie: str


def create_app(session: ReviewSession, token: str, port: int) -> FastAPI:
    """The review app for ``session``, answering only on ``127.0.0.1:port`` / ``localhost:port`` with ``token``."""
    if len(token) < 16:
        raise ValueError("`token` must be at least 16 characters")
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
    app.state.guard = _Guard(session, token, hosts, frozenset(f"http://{h}" for h in hosts), f"imgdedup_review_{port}")
    app.middleware("http")(_guard)
    app.include_router(router)
    return app


def _refusal(request: Request) -> Response | None:
    """Why the request is refused (None: it may go on); a first visit with the token is answered here."""
    guard: _Guard = request.app.state.guard
    if request.headers.get("host", "") not in guard.hosts:
        return _refuse(403, "unknown host")  # also what a DNS-rebinding page gets
    given = request.query_params.get("token")
    if given is not None and request.method == "GET":
        if not secrets.compare_digest(given, guard.token):
            return _refuse(403, "wrong token")
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        path = "/" + request.url.path.lstrip("/")  # never '//host': a redirect stays on this server
        answer = RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)
        answer.set_cookie(guard.cookie, guard.token, httponly=True, samesite="strict", path="/")
        return answer
    held = request.cookies.get(guard.cookie, "")
    if not held:
        return _refuse(403, "no token: open the URL that `imgdedup review` printed")
    if not secrets.compare_digest(held, guard.token):
        return _refuse(403, "wrong token")
    if request.method not in ("GET", "HEAD") and request.headers.get("origin") not in guard.origins:
        return _refuse(403, "cross-origin request")
    return None


async def _guard(request: Request, call_next):
    answer = _refusal(request) or await call_next(request)
    answer.headers["Content-Security-Policy"] = CSP
    answer.headers["X-Content-Type-Options"] = "nosniff"
    answer.headers["Referrer-Policy"] = "same-origin"  # 'no-referrer' would send Origin: null on POST
    answer.headers["Cache-Control"] = "no-store"
    return answer


def _session(request: Request) -> ReviewSession:
    return request.app.state.guard.session


async def _posted(request: Request) -> dict[str, str] | Response:
    """The POSTed form, when it carries the token; else the refusal."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return _refuse(413, "form too large")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not secrets.compare_digest(form.get("token", ""), request.app.state.guard.token):
        return _refuse(403, "the form has no token or a wrong one")
    return form


def _page(request: Request, name: str, **values) -> HTMLResponse:
    template = environment().get_template(name)
    return HTMLResponse(
        template.render(token=request.app.state.guard.token, human=human_bytes, show=display_name, **values)
    )


def _back(form: dict, number: int | None = None) -> RedirectResponse:
    query = {"page": _int(form.get("page"), 0)}
    if number is not None:
        query["focus"] = number
    anchor = f"#cluster-{number}" if number is not None else ""
    return RedirectResponse(f"/clusters?{urlencode(query)}{anchor}", status_code=303)


router = APIRouter()


@router.get("/")
async def home():
    return RedirectResponse("/clusters", status_code=303)


@router.get("/favicon.ico")
async def favicon():
    return Response(status_code=204)  # browsers ask for one; none is better than a 404 in the console


@router.get("/static/{name}")
async def static(name: str):
    if name not in STATIC:
        return _refuse(404, "no such file")
    return Response(static_text(name), media_type=STATIC[name])


@router.get("/clusters")
async def clusters(request: Request):
    session = _session(request)
    n_pages = max(1, -(-len(session.clusters) // PAGE))
    page_no = min(max(_int(request.query_params.get("page"), 0), 0), n_pages - 1)
    shown = session.clusters[page_no * PAGE : (page_no + 1) * PAGE]
    entries = session.decisions["clusters"]
    rows = [_cluster_view(session, c, entries.get(str(c["cluster"]))) for c in shown]
    return _page(
        request,
        "review.html",
        rows=rows,
        page=page_no,
        n_pages=n_pages,
        counts=session.counts(),
        references=session.decisions["references"],
        focus=_int(request.query_params.get("focus"), -1),
        root=display_name(session.root),
        actions=ACTIONS,
        suppressed=int(session.document.get("suppressed_pairs", 0)),
        no_store=session.store() is None,
    )


@router.get("/compare/{number}/{index}")
async def compare(number: int, index: int, request: Request):
    session = _session(request)
    cluster = session.by_number.get(number)
    if cluster is None or session.member(number, index) is None:
        return _refuse(404, "no such member")
    other = _int(request.query_params.get("with"), -1)
    if session.member(number, other) is None:
        other = next(k for k, m in enumerate(cluster["members"]) if m["keeper"])
    view = _cluster_view(session, cluster, session.decisions["clusters"].get(str(number)))
    return _page(request, "compare.html", cluster=view, a=view["members"][other], b=view["members"][index])


@router.get("/thumb/{number}/{index}")
async def thumb(number: int, index: int, request: Request):
    path = _session(request).thumbnail(number, index)
    if path is None or not path.is_file():
        return _refuse(404, "no thumbnail")
    return FileResponse(path, media_type="image/jpeg")


@router.get("/image/{number}/{index}")
async def image(number: int, index: int, request: Request):
    path, kind = _session(request).original(number, index)
    if path is None:
        return _refuse(404, kind)
    if kind:
        return FileResponse(path, media_type=kind)
    return Response(_as_png(path), media_type="image/png")  # TIFF, HEIC, RAW...: what the browser cannot show


@router.post("/decide")
async def decide(request: Request):
    form = await _posted(request)
    if isinstance(form, Response):
        return form
    number = _int(form.get("cluster"), -1)
    try:
        _session(request).decide(number, form.get("op", ""), _int(form.get("member"), -1))
    except (KeyError, ValueError) as exc:
        return _refuse(400, f"bad decision: {exc}")
    return _back(form, number)


@router.post("/bulk")
async def bulk(request: Request):
    form = await _posted(request)
    if isinstance(form, Response):
        return form
    session, scope, page_no = _session(request), form.get("scope"), _int(form.get("page"), 0)
    if scope == "exact":
        chosen = [c for c in session.clusters if session.is_exact(c)]
    elif scope == "page":
        chosen = session.clusters[page_no * PAGE : (page_no + 1) * PAGE]
    elif scope == "all":
        chosen = session.clusters
    else:
        return _refuse(400, "scope must be exact, page or all")
    session.accept([int(c["cluster"]) for c in chosen])
    return _back(form)


@router.post("/folder")
async def folder(request: Request):
    form = await _posted(request)
    if isinstance(form, Response):
        return form
    try:
        if form.get("op") == "drop":
            _session(request).drop_folder(_int(form.get("position"), -1))
        else:
            _session(request).keep_folder(_int(form.get("cluster"), -1), _int(form.get("member"), -1))
    except KeyError:
        return _refuse(400, "no such member or folder")
    return _back(form)


@router.post("/undo")
async def undo(request: Request):
    form = await _posted(request)
    if isinstance(form, Response):
        return form
    _session(request).undo()
    return _back(form)


@router.get("/apply")
async def preview(request: Request):
    """The dry run of the decisions: reads files, changes nothing."""
    action, to = request.query_params.get("action", "delete"), request.query_params.get("to", "")
    if action not in ACTIONS:
        return _refuse(400, f"action must be one of {', '.join(ACTIONS)}")
    shown = dict(action=action, to=to, error=None, plan=None, outcome=None, lines=[], actions=ACTIONS)
    try:
        shown["plan"], shown["outcome"], shown["lines"] = _session(request).dry_run(action, to)
    except (ImgdedupError, OSError) as exc:
        shown["error"] = str(exc)
    return _page(request, "apply.html", **shown)


@router.post("/apply")
async def apply(request: Request):
    form = await _posted(request)
    if isinstance(form, Response):
        return form
    action, to = form.get("action", ""), form.get("to", "")
    if action not in ACTIONS:
        return _refuse(400, f"action must be one of {', '.join(ACTIONS)}")
    try:
        position = _session(request).apply(action, to)
    except (ImgdedupError, OSError) as exc:
        return _page(
            request,
            "apply.html",
            action=action,
            to=to,
            error=str(exc),
            plan=None,
            outcome=None,
            lines=[],
            actions=ACTIONS,
        )
    return RedirectResponse(f"/applied/{position}", status_code=303)


@router.get("/applied/{position}")
async def applied(position: int, request: Request):
    session = _session(request)
    if not 0 <= position < len(session.applied):
        return _refuse(404, "no such apply")
    return _page(request, "applied.html", position=position, applied=session.applied[position], restored=None)


@router.post("/undo-apply/{position}")
async def undo_apply(position: int, request: Request):
    form = await _posted(request)
    if isinstance(form, Response):
        return form
    session = _session(request)
    if not 0 <= position < len(session.applied):
        return _refuse(404, "no such apply")
    try:
        result = session.undo_apply(position)
    except (ImgdedupError, OSError) as exc:
        return _refuse(409, str(exc))
    return _page(request, "applied.html", position=position, applied=session.applied[position], restored=result)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _as_png(path: str) -> bytes:
    from imgdedup.imaging.decode import load_image

    with open(path, "rb") as handle:
        picture = load_image(handle.read(), mode="RGB")
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _cluster_view(session: ReviewSession, cluster, entry) -> dict:
    """What the templates show of one cluster and its members."""
    entry = entry or {}
    apart = set(entry.get("apart") or ())
    keeper = entry.get("keeper") or cluster["keeper"]
    if keeper in apart:
        keeper = None
    members = []
    for k, m in enumerate(cluster["members"]):
        folder, _, name = m["path"].rpartition("/")
        evidence = {
            key: value
            for key, value in m.items()
            if key not in KNOWN_FIELDS and key not in ("evidence", "verification")
        }
        why = None if m["keeper"] else evidence_words(m.get("evidence"), m.get("verification") or {})
        if why:
            evidence = {"why": why, **evidence}
        members.append(
            {
                "index": k,
                "number": k + 1,
                "name": display_name(name),
                "folder": display_name(folder + "/" if folder else ""),
                "path": display_name(m["path"]),
                "width": m["width"],
                "height": m["height"],
                "format": m["format"],
                "bytes": m["bytes"],
                "distance": m["distance"],
                "similarity": m.get("similarity"),
                "digest": m["digest"],
                "tier": "keeper" if m["keeper"] else m.get("tier"),
                "suggested": bool(m["keeper"]),
                "keeper": m["path"] == keeper,
                "apart": m["path"] in apart,
                "date": _date(m.get("mtime_ns")),
                "evidence": evidence,
                "thumb": m["digest"] in session.thumbs,
            }
        )
    return {
        "number": int(cluster["cluster"]),
        "reclaimable": int(cluster["reclaimable_bytes"]),
        "members": members,
        "exact": session.is_exact(cluster),
        "not_duplicates": bool(entry.get("not_duplicates")),
        "done": bool(entry.get("done")),
        "decided": bool(entry) and (bool(entry.get("keeper")) or bool(entry.get("done"))),
        "chosen": bool(entry.get("keeper")),
    }


def _date(mtime_ns) -> str:
    if mtime_ns is None:
        return ""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(int(mtime_ns) / 1e9).strftime("%Y-%m-%d %H:%M")


def make_server(run_dir: str | os.PathLike, port: int = 0):
    """``(server, socket, url, session)``: a uvicorn server for the review of ``run_dir``, its socket
    already bound to 127.0.0.1 (so the port in the URL is ours), not yet serving."""
    import socket

    import uvicorn

    session = ReviewSession(run_dir)
    token = secrets.token_urlsafe(24)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(session, token, port), log_level="warning"))
    return server, sock, f"http://127.0.0.1:{port}/?token={token}", session


def serve(run_dir: str | os.PathLike, port: int = 0, open_browser: bool = True, echo=print) -> None:
    """Serve the review of ``run_dir`` on 127.0.0.1 until interrupted; print (and open) its URL."""
    import webbrowser

    server, sock, url, session = make_server(run_dir, port)
    echo(f"review:   {session.run_dir} ({len(session.clusters)} clusters)")
    echo(f"open:     {url}")
    echo("stop:     Ctrl+C (decisions are saved as they are made)")
    if open_browser:
        webbrowser.open(url)
    server.run(sockets=[sock])
