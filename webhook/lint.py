"""`vllm-env-guard lint`: manifests from files, directories or stdin, through the engine, to a report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from webhook import __version__
from webhook.cli import UsageError, write_stdout
from webhook.config import Config, ConfigError, load_config
from webhook.engine import Item, Settings, analyze
from webhook.findings import Finding, Severity, Workload
from webhook.manifests import Document, ManifestError, iter_paths
from webhook.output import render
from webhook.output.report import Report
from webhook.output.text import use_color
from webhook.rules import CATALOG
from webhook.rules.manifest_invalid import RULE as MANIFEST_INVALID


def load_settings(args: argparse.Namespace) -> tuple[Config, Settings]:
    """The config file and the analysis settings, command line options first."""
    if args.quiet and args.format != "text":
        raise UsageError(f"--quiet applies to --format text only, not {args.format}")
    try:
        config = load_config(args.config, known_rules=CATALOG)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    version, source = ((args.vllm_version, "--vllm-version") if args.vllm_version
                       else (config.vllm_version, f"vllmVersion in {config.path or 'the config file'}"))
    settings = Settings(
        vllm_version=version,
        version_source=source,
        namespace=getattr(args, "namespace", None) or config.namespace or "default",
        severities=config.rules,
    )
    return config, settings


def invalid_document(document: Document, settings: Settings) -> Finding | None:
    severity = settings.severities.get(MANIFEST_INVALID.id, MANIFEST_INVALID.severity)
    if severity is None:
        return None
    return Finding(rule=MANIFEST_INVALID.id, severity=severity, message=document.error or "invalid document",
                   hint=MANIFEST_INVALID.fix, file=document.path, line=document.error_line or document.line)


def visible(findings: Iterable[Finding], show_info: bool) -> list[Finding]:
    kept = [f for f in findings if show_info or f.severity is not Severity.INFO]
    return sorted(kept, key=lambda f: (f.file or "", f.line or 0, str(f.object or ""), -f.severity.rank, f.rule))


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


@contextmanager
def output_stream(path: str | None) -> Iterator[IO[str]]:
    if not path:
        yield sys.stdout
        return
    try:
        with open(path, "w", encoding="utf-8") as stream:
            yield stream
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def emit(report: Report, args: argparse.Namespace) -> None:
    """The report in `args.format` (with --color and --quiet) to `args.output` or stdout."""
    with output_stream(args.output) as stream:
        color = args.format == "text" and use_color(args.color, stream, os.environ)
        write_to(stream, render(args.format, report, color=color, quiet=args.quiet))


def write_to(stream: IO[str], text: str) -> None:
    """Write to a stream of output_stream (stdout: see write_stdout)."""
    if stream is sys.stdout:
        write_stdout(text)
    else:
        stream.write(text)


def run_lint(args: argparse.Namespace) -> int:
    if not args.paths:
        raise UsageError("no input: give files, directories, or - to read stdin")
    config, settings = load_settings(args)
    items: list[Item] = []
    findings: list[Finding] = []
    files: set[str] = set()
    try:
        for document in iter_paths(args.paths, ignore=config.ignore_paths):
            files.add(document.path)
            if document.obj is not None:
                items.append(Item(document.obj, document.path))
            elif document.not_kubernetes and args.skip_non_kubernetes:
                continue
            elif (invalid := invalid_document(document, settings)) is not None:
                findings.append(invalid)
    except ManifestError as exc:
        raise UsageError(str(exc)) from None
    workloads: list[Workload] = []
    findings += analyze(items, settings, workloads=workloads)
    report = Report(findings=visible(findings, args.show_info), files=len(files), objects=len(items),
                    tool_version=__version__, rules=list(CATALOG.values()), workloads=workloads)
    emit(report, args)
    if not items:
        print("vllm-env-guard lint: no Kubernetes objects found in the input", file=sys.stderr)
        return exit_code(report.findings) if args.skip_non_kubernetes else 2
    return exit_code(report.findings)
