"""The HTML review report: one self-contained page plus a thumbnails folder.

The page works offline from a ``file://`` URL: inline CSS and JavaScript, no
CDN, and a Content-Security-Policy that allows no network access and only the
page's own script (by hash), so even an injected event handler would not run.

Layout of the page:

* a summary table (whatever the caller passes in ``summary``), the precision and
  recall against a ground truth when given, and an inline SVG histogram of the
  pair distances (or similarities) with the threshold marked;
* the clusters, largest reclaimable first, rendered by the page's script from a
  JSON data block 50 per page, with a client-side search on file names and a
  side-by-side compare view (click two thumbnails);
* the unreadable files.

Safety: the data block is JSON with ``<``, ``>`` and ``&`` written as ``\\u003c``
and so on, so no file name can end the ``<script>`` element; the script builds
every node with ``textContent`` / attributes, never ``innerHTML``; and the
server-rendered parts go through :func:`html.escape`. A file named
``<img src=x onerror=alert(1)>.png`` shows as text.

Thumbnails are JPEGs named by content digest and size
(``thumbs/<digest>-<size>.jpg``), written once and reused by later reports.
The run folder may be a URL (``s3://bucket/runs/x``): the page and thumbnails
are then objects there, and the page still refers to ``thumbs/`` relatively.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Sequence
from urllib.parse import quote

import numpy as np

from imgdedup.storage.locations import atomic_write_text
from imgdedup.errors import ImageLoadError
from imgdedup.imaging.discover import FileRecord, read_bytes
from imgdedup.imaging.decode import load_image
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join

REPORT_NAME = "report.html"
THUMBS = "thumbs"
PAGE_SIZE = 50


def display_name(file_id: str) -> str:
    """A path as text for people: undecodable bytes shown as U+FFFD."""
    return os.fsencode(file_id).decode("utf-8", errors="replace")


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# --- thumbnails ----------------------------------------------------------------------

def thumbnail_name(digest: str, size: int) -> str:
    return f"{digest}-{size}.jpg"


def _write_thumbnail(root: str, member: Mapping, target: Location, size: int) -> bool:
    try:
        data = read_bytes(root, FileRecord(member["path"], member["bytes"], 0))
        image = load_image(data, mode="RGB", draft_size=(size, size))
        image.thumbnail((size, size))
        locations.write_with(target, lambda handle: image.save(handle, "JPEG", quality=85))
        return True
    except (ImageLoadError, OSError, ValueError):
        return False  # the report then shows the name without a picture


def make_thumbnails(root: str, members: Sequence[Mapping], folder: str | os.PathLike, size: int, workers: int | None = None) -> dict[str, str]:
    """Write one JPEG thumbnail per distinct digest; return digest -> src relative to the page.

    A thumbnail that already exists (same digest and size) is reused, so a
    re-render costs one listing of the folder. Missing ones are made on a few
    threads (Pillow decodes without holding the GIL). ``folder`` may be a URL.
    """
    folder = as_location(folder)
    locations.make_folder(folder)
    present = set(locations.list_names(folder))
    prefix = locations.name(folder)
    sources: dict[str, str] = {}
    todo: dict[str, Mapping] = {}
    for member in members:
        digest = member["digest"]
        if digest in sources or digest in todo:
            continue
        name = thumbnail_name(digest, size)
        if name in present:
            sources[digest] = f"{prefix}/{name}"
        else:
            todo[digest] = member
    if todo:
        workers = workers or min(4, os.cpu_count() or 1)
        digests = list(todo)

        def one(digest: str) -> bool:
            return _write_thumbnail(root, todo[digest], join(folder, thumbnail_name(digest, size)), size)

        if workers > 1 and len(digests) > 8:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(one, digests))
        else:
            done = [one(d) for d in digests]
        for digest, ok in zip(digests, done):
            if ok:
                sources[digest] = f"{prefix}/{thumbnail_name(digest, size)}"
    return sources


# --- the distance plot -----------------------------------------------------------------

def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def distance_histogram_svg(distances, threshold: float | None, label: str = "Hamming distance", similarity: bool = False,
                           width: int = 640, height: int = 220) -> str:
    """An inline SVG histogram of pair distances with the threshold as a dashed red line.

    Integer distances get one bar per value; other values 40 equal bins. Each bar
    carries a ``<title>`` with its exact count (a tooltip).
    """
    d = np.asarray(distances).ravel()
    esc = html.escape
    if d.size == 0:
        return "<p class='note'>No pair within the threshold.</p>"
    d = d.astype(np.float64)
    integral = bool(np.all(np.isfinite(d)) and np.all(d == np.round(d)) and (threshold is None or float(threshold).is_integer()))
    if integral:
        lo = int(min(0, d.min()))
        hi = int(max(d.max(), threshold if threshold is not None else d.max()))
        counts = np.bincount((d - lo).astype(np.int64), minlength=hi - lo + 1)
        edges = np.arange(lo, hi + 2, dtype=np.float64) - 0.5
    else:
        lo = float(min(d.min(), threshold if threshold is not None else d.min()))
        hi = float(max(d.max(), threshold if threshold is not None else d.max()))
        if hi <= lo:
            hi = lo + 1.0
        counts, edges = np.histogram(d, bins=40, range=(lo, hi))
    left, right, top, bottom = 48, 12, 22, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    x0, x1 = float(edges[0]), float(edges[-1])

    def x(value: float) -> float:
        return left + (value - x0) / (x1 - x0) * plot_w

    peak = int(counts.max()) or 1
    unit = "similarity" if similarity else "distance"
    parts = [
        f"<svg id='distance-plot' class='plot' viewBox='0 0 {width} {height}' "
        f"width='{width}' height='{height}' role='img' aria-label='{esc(label)} of {d.size} pairs'>",
        f"<title>{esc(label)} of the {d.size} pairs found</title>",
        f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' class='axis'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + plot_h}' class='axis'/>",
        f"<text x='{left - 6}' y='{top + 4}' text-anchor='end'>{peak}</text>",
        f"<text x='{left - 6}' y='{top + plot_h}' text-anchor='end'>0</text>",
        f"<text x='{left + plot_w / 2:.1f}' y='{height - 4}' text-anchor='middle'>{esc(label)}</text>",
    ]
    for k, count in enumerate(counts.tolist()):
        a, b = float(edges[k]), float(edges[k + 1])
        bar_h = count / peak * plot_h
        where = _fmt_number((a + b) / 2) if integral else f"{a:.3g} to {b:.3g}"
        parts.append(
            f"<rect class='bar' x='{x(a) + 0.5:.1f}' y='{top + plot_h - bar_h:.1f}' width='{max(x(b) - x(a) - 1, 0.5):.1f}' "
            f"height='{bar_h:.1f}'><title>{unit} {esc(where)}: {count} pairs</title></rect>"
        )
    n_ticks = len(counts) if integral else 5
    step = max(1, math.ceil(n_ticks / 16))
    if integral:
        ticks = [lo + k for k in range(0, len(counts), step)]
    else:
        ticks = [x0 + (x1 - x0) * k / 4 for k in range(5)]
    for value in ticks:
        parts.append(f"<text x='{x(value):.1f}' y='{top + plot_h + 14}' text-anchor='middle'>{esc(_fmt_number(value))}</text>")
    if threshold is not None:
        tx = x(float(threshold) + (0.5 if integral and not similarity else -0.5 if integral else 0.0))
        side = "&#8804;" if not similarity else "&#8805;"
        parts.append(f"<line class='threshold' x1='{tx:.1f}' y1='{top - 4}' x2='{tx:.1f}' y2='{top + plot_h}'/>")
        anchor = "end" if tx > width - 70 else "start" if tx < left + 70 else "middle"
        parts.append(
            f"<text class='threshold-label' x='{tx:.1f}' y='{top - 8}' text-anchor='{anchor}'>"
            f"threshold {side} {esc(_fmt_number(float(threshold)))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the page --------------------------------------------------------------------------

_CSS = """
:root{--keeper:#1f8a4c;--sel:#1b63d6;--line:#d9dde3}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2430;background:#f4f6f8}
header,main{max-width:1280px;margin:0 auto;padding:0 1.2rem}
h1{margin:1rem 0 .4rem;font-size:1.5rem}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
.top{display:flex;flex-wrap:wrap;gap:1.2rem;align-items:flex-start}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.7rem 1rem}
table.summary td{padding:.12rem 1rem .12rem 0;vertical-align:top}table.summary td:first-child{color:#5b6473}
svg.plot{max-width:100%;height:auto;font-size:11px;fill:#5b6473}svg .bar{fill:#5b8def}svg .axis{stroke:#8a93a1}
svg .threshold{stroke:#d63b3b;stroke-width:2;stroke-dasharray:5 3}svg .threshold-label{fill:#d63b3b;font-weight:600}
.note{color:#5b6473;margin:.3rem 0}
.controls{position:sticky;top:0;z-index:5;background:#f4f6f8ee;padding:.6rem 0;display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;border-bottom:1px solid var(--line)}
.controls input{font:inherit;padding:.35rem .6rem;border:1px solid #b9c0ca;border-radius:6px;min-width:18rem}
button{font:inherit;padding:.3rem .7rem;border:1px solid #b9c0ca;border-radius:6px;background:#fff;cursor:pointer}
button:disabled{opacity:.45;cursor:default}
section.cluster{background:#fff;border:1px solid var(--line);border-radius:8px;margin:.8rem 0;padding:.5rem 1rem .8rem}
section.cluster h3{margin:.2rem 0 .6rem;font-size:1rem}
.members{display:flex;flex-wrap:wrap;gap:.8rem}
figure{margin:0;width:184px;font-size:12px;word-break:break-all;border:2px solid transparent;border-radius:6px;padding:4px;cursor:pointer}
figure:hover{background:#f0f4fa}figure.selected{border-color:var(--sel);background:#eaf1fd}
figure .pic{width:172px;height:172px;display:flex;align-items:center;justify-content:center;background:#eef0f3;border-radius:4px;border:1px solid #d5d9df}
figure.keeper .pic{border:3px solid var(--keeper)}
figure img{max-width:164px;max-height:164px;display:block}
figure.match .name{background:#fff3b0}
.name{font-weight:600}.folder,.meta{color:#5b6473}
.badge{display:inline-block;background:var(--keeper);color:#fff;border-radius:3px;padding:0 .35rem;font-weight:700;margin-right:.3rem}
table.errors{border-collapse:collapse}table.errors td{padding:.15rem 1rem .15rem 0;vertical-align:top;border-bottom:1px solid #eceef1;word-break:break-all}
#compare{position:fixed;inset:0;background:#0f1722d9;z-index:20;display:flex;align-items:center;justify-content:center}
#compare[hidden]{display:none}
.compare-box{background:#fff;border-radius:10px;padding:1rem;max-width:96vw;max-height:94vh;overflow:auto}
.compare-panes{display:flex;gap:1rem;flex-wrap:wrap}
.pane{flex:1 1 420px;min-width:300px}.pane .big{width:100%;height:60vh;display:flex;align-items:center;justify-content:center;background:#eef0f3;border-radius:6px}
.pane img{width:100%;height:100%;object-fit:contain}
.pane dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.6rem 0 0;word-break:break-all}.pane dt{color:#5b6473}.pane dd{margin:0}
.same{color:var(--keeper);font-weight:700}
"""

# The page script. It reads the JSON data block and builds every node with
# createElement/textContent: data never reaches innerHTML.
_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = D.pageSize, ALL = D.clusters, shown = ALL, page = 0, selected = [], hay = null, errShown = 0;
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function human(n) {
    var v = n, units = ["B", "KB", "MB", "GB", "TB"];
    for (var k = 0; k < units.length; k++) {
      if (v < 1024 || k === units.length - 1) return k === 0 ? Math.round(v) + " B" : v.toFixed(1) + " " + units[k];
      v /= 1024;
    }
  }
  // member: [name, folder, width, height, format, bytes, distance, keeper, thumb, digest, similarity|null, nameUrl?]
  function info(c, m) {
    var f = D.folders[m[1]];
    return {cluster: c[0], name: m[0], folder: f[0], path: f[0] + m[0], width: m[2], height: m[3],
            format: D.formats[m[4]], bytes: m[5], distance: m[6], keeper: m[7] === 1, digest: m[9], similarity: m[10],
            thumb: m[8] === 1 ? D.thumbs + "/" + m[9] + D.thumbSuffix : null,
            url: D.rootUrl ? D.rootUrl + f[1] + (m.length > 11 ? m[11] : encodeURIComponent(m[0])) : null};
  }
  function haystack() {
    if (hay === null) {
      hay = new Array(ALL.length);
      for (var k = 0; k < ALL.length; k++) {
        var ms = ALL[k][2], parts = new Array(ms.length);
        for (var j = 0; j < ms.length; j++) parts[j] = (D.folders[ms[j][1]][0] + ms[j][0]).toLowerCase();
        hay[k] = parts.join("\n");
      }
    }
    return hay;
  }
  function query() { return $("search").value.trim().toLowerCase(); }
  function filter() {
    var q = query();
    if (!q) { shown = ALL; } else {
      var h = haystack(); shown = [];
      for (var k = 0; k < ALL.length; k++) if (h[k].indexOf(q) >= 0) shown.push(ALL[k]);
    }
    page = 0; render();
  }
  function figure(c, m, q) {
    var it = info(c, m);
    var fig = el("figure", it.keeper ? "keeper" : "member");
    if (q && it.path.toLowerCase().indexOf(q) >= 0) fig.classList.add("match");
    fig.tabIndex = 0;
    fig.title = it.path;
    var pic = el("div", "pic");
    if (it.thumb) {
      var img = el("img");
      img.loading = "lazy"; img.decoding = "async"; img.alt = it.name; img.src = it.thumb;
      pic.appendChild(img);
    } else {
      pic.appendChild(el("span", "note", "(no preview)"));
    }
    fig.appendChild(pic);
    var cap = el("figcaption");
    var nameLine = el("div", "name");
    if (it.keeper) nameLine.appendChild(el("span", "badge", "keeper"));
    nameLine.appendChild(el("span", "path", it.name));
    cap.appendChild(nameLine);
    cap.appendChild(el("div", "folder", it.folder || "(top folder)"));
    cap.appendChild(el("div", "meta", it.width + " \u00d7 " + it.height + " \u00b7 " + it.format + " \u00b7 " + human(it.bytes)));
    cap.appendChild(el("div", "meta", it.keeper ? "keeper" : "distance " + it.distance + (it.similarity === null ? "" : " \u00b7 similarity " + it.similarity)));
    fig.appendChild(cap);
    function pick() { choose(fig, it); }
    fig.addEventListener("click", pick);
    fig.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); } });
    return fig;
  }
  function section(c, q) {
    var s = el("section", "cluster");
    s.id = "cluster-" + c[0];
    s.appendChild(el("h3", null, "Cluster " + c[0] + " \u00b7 " + c[2].length + " files \u00b7 " + human(c[1]) + " reclaimable"));
    var box = el("div", "members");
    for (var j = 0; j < c[2].length; j++) box.appendChild(figure(c, c[2][j], q));
    s.appendChild(box);
    return s;
  }
  function render() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    if (page >= pages) page = pages - 1;
    var q = query(), list = $("clusters"), frag = document.createDocumentFragment();
    var end = Math.min(shown.length, (page + 1) * PAGE);
    for (var k = page * PAGE; k < end; k++) frag.appendChild(section(shown[k], q));
    list.replaceChildren(frag);
    selected = [];
    $("cluster-count").textContent = String(shown.length);
    $("page-info").textContent = shown.length ? "clusters " + (page * PAGE + 1) + "\u2013" + end + " of " + shown.length + ", page " + (page + 1) + " of " + pages : "no cluster matches";
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
  }
  function choose(fig, it) {
    var at = -1;
    for (var k = 0; k < selected.length; k++) if (selected[k].fig === fig) at = k;
    if (at >= 0) { selected.splice(at, 1); fig.classList.remove("selected"); return; }
    selected.push({fig: fig, it: it});
    fig.classList.add("selected");
    if (selected.length === 2) {
      var a = selected[0], b = selected[1];
      a.fig.classList.remove("selected"); b.fig.classList.remove("selected");
      selected = [];
      openCompare(a.it, b.it);
    }
  }
  function pane(it, other) {
    var p = el("div", "pane"), big = el("div", "big");
    if (it.url || it.thumb) {
      var img = el("img");
      img.alt = it.name;
      if (it.url) {
        img.addEventListener("error", function () { if (it.thumb && img.getAttribute("src") !== it.thumb) img.src = it.thumb; });
        img.src = it.url;
      } else { img.src = it.thumb; }
      big.appendChild(img);
    } else { big.appendChild(el("span", "note", "(no preview)")); }
    p.appendChild(big);
    var dl = el("dl");
    function row(k, v, cls) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", cls || null, v)); }
    row("name", it.name);
    row("folder", it.folder || "(top folder)");
    row("cluster", it.cluster);
    row("role", it.keeper ? "keeper" : "duplicate");
    row("resolution", it.width + " \u00d7 " + it.height + " (" + (it.width * it.height / 1e6).toFixed(2) + " MP)");
    row("format", it.format);
    row("file size", human(it.bytes) + " (" + it.bytes + " bytes)");
    row("distance to keeper", it.distance);
    if (it.similarity !== null) row("similarity to keeper", it.similarity);
    row("digest", it.digest);
    if (other.digest === it.digest) row("bytes", "identical to the other file", "same");
    p.appendChild(dl);
    return p;
  }
  function openCompare(a, b) {
    var box = $("compare-panes");
    box.replaceChildren(pane(a, b), pane(b, a));
    $("compare").hidden = false;
    $("compare-close").focus();
  }
  function closeCompare() { $("compare").hidden = true; $("compare-panes").replaceChildren(); }
  function moreErrors() {
    var body = $("error-rows"), end = Math.min(D.errors.length, errShown + 200), frag = document.createDocumentFragment();
    for (var k = errShown; k < end; k++) {
      var tr = el("tr");
      tr.appendChild(el("td", "path", D.errors[k][0]));
      tr.appendChild(el("td", null, D.errors[k][1]));
      frag.appendChild(tr);
    }
    body.appendChild(frag);
    errShown = end;
    $("more-errors").hidden = errShown >= D.errors.length;
  }
  var timer = null;
  $("search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(filter, 120); });
  $("search").addEventListener("keydown", function (ev) { if (ev.key === "Enter") { clearTimeout(timer); filter(); } });
  $("prev").addEventListener("click", function () { if (page > 0) { page--; render(); $("clusters-top").scrollIntoView(); } });
  $("next").addEventListener("click", function () { page++; render(); $("clusters-top").scrollIntoView(); });
  $("compare-close").addEventListener("click", closeCompare);
  $("compare").addEventListener("click", function (ev) { if (ev.target === $("compare")) closeCompare(); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && !$("compare").hidden) closeCompare(); });
  $("more-errors").addEventListener("click", moreErrors);
  $("search").disabled = false;
  render();
  moreErrors();
  document.body.setAttribute("data-ready", "1");
})();
"""

_JS_HASH = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")

_CSP = (
    "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_JS_HASH}'; base-uri 'none'; form-action 'none'"
)


def json_for_script(value) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _split(file_id: str) -> tuple[str, str]:
    """(folder with trailing '/', name) of a file id."""
    folder, _, name = file_id.rpartition("/")
    return (folder + "/" if folder else ""), name


def _url_part(raw: str) -> str:
    return quote(os.fsencode(raw), safe="/")


def _number(value):
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return int(value) if value.is_integer() else round(value, 4)


def report_data(clusters_doc: Mapping, errors: Sequence[tuple[str, str]], thumbs: Mapping[str, str], thumbnail_size: int) -> dict:
    """The page's JSON data block: clusters largest reclaimable first, members as compact rows."""
    folders: dict[str, int] = {}
    folder_rows: list[list[str]] = []
    formats: dict[str, int] = {}
    clusters = sorted(clusters_doc["clusters"], key=lambda c: (-c["reclaimable_bytes"], c["cluster"]))
    rows = []
    for cluster in clusters:
        members = []
        for m in cluster["members"]:
            raw_folder, raw_name = _split(m["path"])
            if raw_folder not in folders:
                folders[raw_folder] = len(folder_rows)
                folder_rows.append([display_name(raw_folder), _url_part(raw_folder)])
            fmt = str(m["format"])
            if fmt not in formats:
                formats[fmt] = len(formats)
            name = display_name(raw_name)
            row = [name, folders[raw_folder], int(m["width"]), int(m["height"]), formats[fmt], int(m["bytes"]),
                   _number(m["distance"]), 1 if m["keeper"] else 0, 1 if m["digest"] in thumbs else 0, str(m["digest"]),
                   None if m.get("similarity") is None else _number(m["similarity"])]
            if name != raw_name:  # not valid UTF-8: the browser needs the exact bytes, percent-encoded
                row.append(_url_part(raw_name))
            members.append(row)
        rows.append([int(cluster["cluster"]), int(cluster["reclaimable_bytes"]), members])
    root = str(clusters_doc.get("root") or "")
    root_url = ""
    if root and os.path.isabs(root):
        root_url = "file://" + _url_part(root.rstrip("/") + "/")
    return {
        "version": 1,
        "pageSize": PAGE_SIZE,
        "root": display_name(root),
        "rootUrl": root_url,
        "thumbs": THUMBS,
        "thumbSuffix": f"-{thumbnail_size}.jpg",
        "folders": folder_rows,
        "formats": list(formats),
        "clusters": rows,
        "errors": [[display_name(p), str(r)] for p, r in errors],
    }


def _summary_value(value) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_summary_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _scores_html(scores: Mapping[str, object]) -> str:
    esc = html.escape
    cells = []
    for key in ("precision", "recall", "f1"):
        if key in scores:
            cells.append(f"<tr><td>{key}</td><td>{float(scores[key]):.4f}</td></tr>")
    counts = [f"{k} {int(scores[k])}" for k in ("tp", "fp", "fn") if k in scores]
    if counts:
        cells.append(f"<tr><td>pairs</td><td>{esc(', '.join(counts))}</td></tr>")
    return (
        "<div class='card' id='scores'><h2>Against the ground truth</h2>"
        f"<table class='summary'>{''.join(cells)}</table></div>"
    )


def render_report(
    clusters_doc: Mapping,
    errors: Sequence[tuple[str, str]],
    summary: Mapping[str, object],
    out_dir: str | os.PathLike,
    thumbnail_size: int = 160,
    *,
    pair_distances=None,
    threshold: float | None = None,
    similarity: bool = False,
    distance_label: str | None = None,
    scores: Mapping[str, object] | None = None,
    workers: int | None = None,
) -> Location:
    """Write ``report.html`` (and ``thumbs/``) into ``out_dir``; return the page's path.

    Parameters
    ----------
    clusters_doc : the ``clusters.json`` document (``root``, ``method``, ``threshold``, ``clusters``).
    errors : ``(path, reason)`` for each unreadable file.
    summary : label -> value rows shown at the top, in order (a Mapping value is shown as ``k v, ...``).
    out_dir : the run folder, a local path or a URL (see :mod:`imgdedup.storage.locations`).
    thumbnail_size : the longest side of a thumbnail, in pixels.
    pair_distances : optional 1-D array, the distance of every pair found (``work/pairs.npz["distance"]``);
        when given, the page shows their histogram with ``threshold`` marked.
    threshold : the line on the plot; default ``clusters_doc["threshold"]``.
    similarity : the values are similarities (higher is closer), not distances.
    distance_label : the plot's axis label; default "Hamming distance" or "similarity".
    scores : optional precision/recall against a ground truth, as returned by
        :func:`imgdedup.compat.evaluation.pairwise_scores` (``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn``).
    """
    out_dir = as_location(out_dir)
    locations.make_folder(out_dir)
    members = [m for c in clusters_doc["clusters"] for m in c["members"]]
    thumbs = make_thumbnails(clusters_doc["root"], members, join(out_dir, THUMBS), thumbnail_size, workers=workers)
    label = distance_label or ("similarity" if similarity else "Hamming distance")
    data = report_data(clusters_doc, errors, thumbs, thumbnail_size)
    if threshold is None:
        threshold = clusters_doc.get("threshold")
    esc = html.escape
    root = display_name(str(clusters_doc.get("root", "")))
    rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(_summary_value(v))}</td></tr>" for k, v in summary.items())
    top = [f"<div class='card' id='summary'><h2>Summary</h2><table class='summary'>{rows}</table></div>"]
    if pair_distances is not None:
        n_pairs = int(np.asarray(pair_distances).size)
        top.append(
            f"<div class='card' id='distances'><h2>Pair {'similarities' if similarity else 'distances'} ({n_pairs} pairs)</h2>"
            f"{distance_histogram_svg(pair_distances, threshold, label, similarity)}</div>"
        )
    if scores is not None:
        top.append(_scores_html(scores))
    n_clusters = len(data["clusters"])
    page = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>imgdedup report: {esc(root)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>imgdedup report</h1><p class='note'>Folder <span class='path'>{esc(root)}</span></p></header><main>",
        f"<div class='top'>{''.join(top)}</div>",
        f"<h2 id='clusters-top'>Duplicate clusters (<span id='cluster-count'>{n_clusters}</span>)</h2>",
        "<noscript><p class='note'>The cluster list needs JavaScript; the same data is in clusters.json and clusters.csv.</p></noscript>",
        "<div class='controls'><input id='search' type='search' placeholder='Search file names' aria-label='Search file names' disabled>",
        "<button id='prev' type='button'>&#8592; Previous</button><button id='next' type='button'>Next &#8594;</button>",
        "<span id='page-info' class='note'></span><span class='note'>Click two pictures to compare them side by side.</span></div>",
        "<div id='clusters'></div>",
        f"<h2 id='errors'>Unreadable files ({len(errors)})</h2>",
        "<table class='errors'><tbody id='error-rows'></tbody></table><button id='more-errors' type='button' hidden>Show more</button>",
        "</main>",
        "<div id='compare' hidden role='dialog' aria-modal='true' aria-label='Compare two files'><div class='compare-box'>",
        "<p><button id='compare-close' type='button'>Close (Esc)</button></p><div id='compare-panes' class='compare-panes'></div></div></div>",
        f"<script type='application/json' id='report-data'>{json_for_script(data)}</script>",
        f"<script>{_JS}</script>",
        "</body></html>\n",
    ]
    path = join(out_dir, REPORT_NAME)
    atomic_write_text(path, "".join(page))
    return path
