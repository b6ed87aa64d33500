"""Jinja2 templates (autoescaped: every text from a run is escaped) and the atomic write."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from retentive.storage.atomic import atomic_write_text

REPORT_NAME = "report.html"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("retentive.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def write_html(path: Path, html: str) -> Path:
    """Replace `path` atomically: a browser open on the old report never reads half a file."""
    return atomic_write_text(path, html)
