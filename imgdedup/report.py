"""The HTML review report: one self-contained page plus a thumbnails folder.

The page works offline from a file:// URL (inline CSS, no CDN). Every file name
and path is passed through :func:`html.escape`, so a name like
``<img src=x onerror=alert(1)>.png`` shows as text.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Mapping, Sequence

from imgdedup.chunks import atomic_write_text
from imgdedup.errors import ImageLoadError
from imgdedup.io import FileRecord, load_image, read_bytes

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{margin:0 0 .5rem}table.summary td{padding:.1rem .8rem .1rem 0}
section.cluster{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.members{display:flex;flex-wrap:wrap;gap:.8rem}
figure{margin:0;width:180px;font-size:12px;word-break:break-all}
figure img{max-width:160px;max-height:160px;display:block;border:1px solid #ccc}
figure.keeper img{border:3px solid #2a7}
.badge{background:#2a7;color:#fff;border-radius:3px;padding:0 .3rem;font-weight:bold}
table.errors td{padding:.1rem .8rem .1rem 0;vertical-align:top}
"""


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


def make_thumbnails(root: str, members: Sequence[Mapping], folder: Path, size: int) -> dict[str, str]:
    """Write one JPEG thumbnail per distinct digest; return digest -> relative src.

    Thumbnails are named by content digest, so a rerun reuses them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sources: dict[str, str] = {}
    for member in members:
        digest = member["digest"]
        if digest in sources:
            continue
        target = folder / f"{digest}.jpg"
        if not target.exists():
            try:
                data = read_bytes(root, FileRecord(member["path"], member["bytes"], 0))
                image = load_image(data, mode="RGB", draft_size=(size, size))
                image.thumbnail((size, size))
                tmp = target.with_name(f".{target.name}.tmp")
                image.save(tmp, "JPEG", quality=85)
                os.replace(tmp, target)
            except (ImageLoadError, OSError):
                continue  # the report then shows the name without a picture
        sources[digest] = f"{folder.name}/{target.name}"
    return sources


def render_report(
    clusters_doc: Mapping,
    errors: Sequence[tuple[str, str]],
    summary: Mapping[str, object],
    out_dir: Path,
    thumbnail_size: int = 160,
) -> Path:
    """Write ``report.html`` (and ``thumbs/``) into ``out_dir``; return the page's path."""
    out_dir = Path(out_dir)
    clusters = sorted(clusters_doc["clusters"], key=lambda c: (-c["reclaimable_bytes"], c["cluster"]))
    members = [m for c in clusters for m in c["members"]]
    thumbs = make_thumbnails(clusters_doc["root"], members, out_dir / "thumbs", thumbnail_size)
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>imgdedup report: {esc(display_name(str(clusters_doc['root'])))}</title><style>{_CSS}</style></head><body>",
        "<h1>imgdedup report</h1><table class='summary'>",
    ]
    for key, value in summary.items():
        parts.append(f"<tr><td>{esc(str(key))}</td><td>{esc(str(value))}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2 id='clusters'>Duplicate clusters ({len(clusters)})</h2>")
    for cluster in clusters:
        parts.append(
            f"<section class='cluster' id='cluster-{cluster['cluster']}'><h3>Cluster {cluster['cluster']}: "
            f"{len(cluster['members'])} images, {esc(human_bytes(cluster['reclaimable_bytes']))} reclaimable</h3><div class='members'>"
        )
        for member in cluster["members"]:
            name = display_name(member["path"])
            src = thumbs.get(member["digest"])
            picture = f"<img src='{esc(src)}' alt='{esc(name)}' loading='lazy'>" if src else "<div>(no preview)</div>"
            badge = "<span class='badge'>keeper</span> " if member["keeper"] else ""
            parts.append(
                f"<figure class='{'keeper' if member['keeper'] else 'member'}'>{picture}<figcaption>{badge}"
                f"<span class='path'>{esc(name)}</span><br>{member['width']} x {member['height']}, {esc(member['format'])}, "
                f"{esc(human_bytes(member['bytes']))}<br>distance {member['distance']}</figcaption></figure>"
            )
        parts.append("</div></section>")
    parts.append(f"<h2 id='errors'>Unreadable files ({len(errors)})</h2><table class='errors'>")
    parts.extend(f"<tr><td>{esc(display_name(path))}</td><td>{esc(reason)}</td></tr>" for path, reason in errors)
    parts.append("</table></body></html>\n")
    path = out_dir / "report.html"
    atomic_write_text(path, "".join(parts))
    return path
