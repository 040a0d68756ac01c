"""The HTML review report: one self-contained page plus a thumbnails folder.

The page (``templates/report.html``) works offline from a ``file://`` URL: its
CSS and JavaScript (``static/report.css``, ``static/report.js``) are inlined, no
CDN, and a Content-Security-Policy that allows no network access and only the
page's own script (by hash), so even an injected event handler would not run.

Layout of the page:

* a summary table (whatever the caller passes in ``summary``), the precision and
  recall against a ground truth when given, and an inline SVG histogram of the
  pair distances (or similarities) with the threshold marked;
* the clusters, largest reclaimable first, rendered by the page's script from a
  JSON data block 50 per page, with a client-side search on file names and a
  side-by-side compare view (click two thumbnails);
* how to act on the run (``imgdedup review`` / ``imgdedup apply``);
* the unreadable files.

Safety: the data block is JSON with ``<``, ``>`` and ``&`` written as ``\\u003c``
and so on, so no file name can end the ``<script>`` element; the script builds
every node with ``textContent`` / attributes, never ``innerHTML``; and the
server-rendered parts go through Jinja2's autoescaping (the SVG plot through
:func:`html.escape`). A file named
``<img src=x onerror=alert(1)>.png`` shows as text.

Thumbnails are JPEGs named by content digest and size
(``thumbs/<digest>-<size>.jpg``, see :mod:`imgdedup.review.thumbnails`),
written once and reused by later reports. Each card shows the member's tier and why it is
there (:func:`evidence_words`); its details list the verification scores.
The run folder may be a URL (``s3://bucket/runs/x``): the page and thumbnails
are then objects there, and the page still refers to ``thumbs/`` relatively.
"""

from __future__ import annotations

import html
import json
import math
import os
from typing import Mapping, Sequence
from urllib.parse import quote

import numpy as np
from markupsafe import Markup

from imgdedup.review.templating import environment, script_hash, static_text
from imgdedup.review.thumbnails import THUMBS, make_thumbnails
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, atomic_write_text, join

REPORT_NAME = "report.html"
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


# --- the distance plot -----------------------------------------------------------------


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def distance_histogram_svg(
    distances,
    threshold: float | None,
    label: str = "Hamming distance",
    similarity: bool = False,
    width: int = 640,
    height: int = 220,
) -> str:
    """An inline SVG histogram of pair distances with the threshold as a dashed red line.

    Integer distances get one bar per value; other values 40 equal bins. Each bar
    carries a ``<title>`` with its exact count (a tooltip).
    """
    d = np.asarray(distances).ravel()
    esc = html.escape
    if d.size == 0:
        return "<p class='note'>No pair within the threshold.</p>"
    d = d.astype(np.float64)
    integral = bool(
        np.all(np.isfinite(d)) and np.all(d == np.round(d)) and (threshold is None or float(threshold).is_integer())
    )
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
        parts.append(
            f"<text x='{x(value):.1f}' y='{top + plot_h + 14}' text-anchor='middle'>{esc(_fmt_number(value))}</text>"
        )
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

_CSP = (
    "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
    "script-src {script}; base-uri 'none'; form-action 'none'"
)


def json_for_script(value) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: How each verification evidence reads on a card; ``{name}`` is one of its scores.
EVIDENCE_WORDS = {
    "digest": "same file content",
    "pixels": "equal pixels (a low-information picture)",
    "aligned": "same picture, aligned (correlation {aligned})",
    "aligned (common aspect)": "same picture where both show it (other screen shape, {shared})",
    "aligned (edge band cut)": "same picture under a {band_edge} band (caption, strip; {band})",
    "keypoints": "crop or small rotation ({inliers} matching keypoints)",
    "keypoints (common centre)": "same picture cut around its centre for another screen ({inliers} matching keypoints)",
    "template": "crop that kept its pixels (placed at {template})",
    "pixels (common aspect)": "equal pixels where both show it (a flat picture, other screen shape)",
}


def _finite(scores: dict) -> dict:
    """Scores the page's JSON can carry: infinite or NaN numbers as text."""
    return {k: v if not isinstance(v, float) or math.isfinite(v) else str(v) for k, v in scores.items()}


def evidence_words(evidence: str | None, scores: dict) -> str | None:
    """Why a member is in its cluster, in words (None when the run did not verify).

    ``evidence`` is the member's ``clusters.json`` evidence (e.g. ``keypoints`` or
    ``aligned (keeper check)``), ``scores`` its ``verification`` scores.
    """
    if not evidence:
        return None
    checked = evidence.endswith(" (keeper check)")
    name = evidence[: -len(" (keeper check)")] if checked else evidence
    template = EVIDENCE_WORDS.get(name, name)
    try:
        words = template.format(**scores)
    except (KeyError, IndexError, ValueError):
        words = template.split(" (")[0] if "{" in template else template
    return words + (", checked against the keeper" if checked else "")


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


def report_data(
    clusters_doc: Mapping, errors: Sequence[tuple[str, str]], thumbs: Mapping[str, str], thumbnail_size: int
) -> dict:
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
            # not valid UTF-8: the browser needs the exact bytes, percent-encoded
            name_url = _url_part(raw_name) if name != raw_name else None
            row = [
                name,
                folders[raw_folder],
                int(m["width"]),
                int(m["height"]),
                formats[fmt],
                int(m["bytes"]),
                _number(m["distance"]),
                1 if m["keeper"] else 0,
                1 if m["digest"] in thumbs else 0,
                str(m["digest"]),
                None if m.get("similarity") is None else _number(m["similarity"]),
                name_url,
                None if m["keeper"] else m.get("tier"),
                None if m["keeper"] else evidence_words(m.get("evidence"), m.get("verification") or {}),
                None if m["keeper"] or not m.get("verification") else _finite(m["verification"]),
            ]
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


def _score_rows(scores: Mapping[str, object]) -> list[tuple[str, str]]:
    rows = [(key, f"{float(scores[key]):.4f}") for key in ("precision", "recall", "f1") if key in scores]
    counts = [f"{k} {int(scores[k])}" for k in ("tp", "fp", "fn") if k in scores]
    if counts:
        rows.append(("pairs", ", ".join(counts)))
    return rows


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
    workers : threads that make missing thumbnails (default: up to 4).
    """
    out_dir = as_location(out_dir)
    locations.make_folder(out_dir)
    members = [m for c in clusters_doc["clusters"] for m in c["members"]]
    thumbs = make_thumbnails(clusters_doc["root"], members, join(out_dir, THUMBS), thumbnail_size, workers=workers)
    label = distance_label or ("similarity" if similarity else "Hamming distance")
    data = report_data(clusters_doc, errors, thumbs, thumbnail_size)
    if threshold is None:
        threshold = clusters_doc.get("threshold")
    script = static_text("report.js")
    plot = n_pairs = None
    if pair_distances is not None:
        n_pairs = int(np.asarray(pair_distances).size)
        plot = Markup(distance_histogram_svg(pair_distances, threshold, label, similarity))  # built with html.escape
    page = (
        environment()
        .get_template("report.html")
        .render(
            csp=Markup(_CSP.format(script=script_hash(script))),  # a constant: quotes stay quotes
            css=Markup(static_text("report.css")),
            script=Markup(script),
            data=Markup(json_for_script(data)),  # no <, > or &: cannot end the element
            root=display_name(str(clusters_doc.get("root", ""))),
            summary=[(str(k), _summary_value(v)) for k, v in summary.items()],
            plot=plot,
            n_pairs=n_pairs,
            similarity=similarity,
            scores=_score_rows(scores) if scores is not None else None,
            run_dir=display_name(str(out_dir)),
            n_clusters=len(data["clusters"]),
            n_errors=len(errors),
        )
    )
    path = join(out_dir, REPORT_NAME)
    atomic_write_text(path, page)
    return path
