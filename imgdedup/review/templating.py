"""The review package's Jinja2 templates and static files, shipped as package data.

``templates/*.html`` are rendered with autoescaping on, so any text a template
prints (a file name, a folder) is escaped; only values wrapped in
:class:`markupsafe.Markup` by the caller (the inlined CSS and script, the plot
built with :func:`html.escape`) go in as they are. ``static/*`` are the CSS and
JavaScript files: the report inlines them (it must work offline from one file),
the review app serves them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources

import jinja2

PACKAGE = "imgdedup.review"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: autoescaping on, blocks trimmed, undefined names an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


@functools.lru_cache(maxsize=None)
def static_text(name: str) -> str:
    """The text of ``static/<name>`` (UTF-8)."""
    return resources.files(PACKAGE).joinpath("static", name).read_text(encoding="utf-8")


def script_hash(code: str) -> str:
    """The CSP source (``'sha256-...'``) that allows exactly this inline script."""
    digest = hashlib.sha256(code.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"
