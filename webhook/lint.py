"""`vllm-env-guard lint`: manifests from files, directories or stdin, through the engine, to a report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from webhook import __version__
from webhook.cli import UsageError
from webhook.config import Config, ConfigError, load_config
from webhook.engine import Item, Settings, analyze
from webhook.findings import Finding, Severity
from webhook.manifests import Document, ManifestError, iter_paths
from webhook.output import render
from webhook.output.report import Report
from webhook.registry.store import use_directory
from webhook.rules import CATALOG
from webhook.rules.manifest_invalid import RULE as MANIFEST_INVALID


def load_settings(args: argparse.Namespace) -> tuple[Config, Settings]:
    """The config file and the analysis settings, command line options first."""
    try:
        config = load_config(args.config, known_rules=CATALOG)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not getattr(args, "registry_dir", None):  # the option was applied when it was parsed
        use_registry_dir(config.registry_dir)
    version, source = ((args.vllm_version, "--vllm-version") if args.vllm_version
                       else (config.vllm_version, f"vllmVersion in {config.path or 'the config file'}"))
    settings = Settings(
        vllm_version=version,
        version_source=source,
        namespace=getattr(args, "namespace", None) or config.namespace or "default",
        severities=config.rules,
    )
    return config, settings


def use_registry_dir(directory: str | None) -> None:
    """Know the releases `registry update` wrote into `directory` (config key registryDir)."""
    if directory:
        try:
            use_directory(directory)
        except ValueError as exc:
            raise UsageError(f"registryDir: {exc}") from None


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


def emit(report: Report, fmt: str, output: str | None) -> None:
    with output_stream(output) as stream:
        color = stream.isatty() and "NO_COLOR" not in os.environ and fmt == "text"
        stream.write(render(fmt, report, color=color))


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
    findings += analyze(items, settings)
    report = Report(findings=visible(findings, args.show_info), files=len(files), objects=len(items),
                    tool_version=__version__, rules=list(CATALOG.values()))
    emit(report, args.format, args.output)
    if not items:
        print("vllm-env-guard lint: no Kubernetes objects found in the input", file=sys.stderr)
        return exit_code(report.findings) if args.skip_non_kubernetes else 2
    return exit_code(report.findings)
