"""Report formats for `lint` and `audit`: text, json, sarif, junit, github."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from webhook.output import github, json_format, junit, sarif, text
from webhook.output.report import Report

__all__ = ["FORMATS", "Report", "render"]

FORMATS: Mapping[str, Callable[[Report], str]] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "github": github.render,
}


def render(fmt: str, report: Report, *, color: bool = False, quiet: bool = False) -> str:
    """The report in format `fmt` (a FORMATS key); `color` (ANSI) and `quiet` (the summary line
    only) apply to text only."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return text.render(report, color=color, quiet=quiet) if fmt == "text" else FORMATS[fmt](report)
