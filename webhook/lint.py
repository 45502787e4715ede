"""`vllm-env-guard lint`: manifests from files, directories or stdin, through the engine, to a report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

from webhook import __version__
from webhook.cli import UsageError, write_stdout
from webhook.config import Config, ConfigError, load_config
from webhook.engine import Item, Settings, analyze, object_ref
from webhook.findings import Finding, Severity, Workload
from webhook.kube.shapes import metadata
from webhook.manifests import Document, ManifestError, iter_paths
from webhook.output import render
from webhook.output.report import Report
from webhook.output.text import use_color
from webhook.registry import bundled_versions, resolve
from webhook.registry.store import use_directory
from webhook.rules import CATALOG
from webhook.rules.manifest_invalid import RULE as MANIFEST_INVALID
from webhook.rules.manifest_invalid import object_problems


def load_settings(args: argparse.Namespace) -> tuple[Config, Settings]:
    """The config file and the analysis settings, command line options first."""
    if args.quiet and args.format != "text":
        raise UsageError(f"--quiet applies to --format text only, not {args.format}")
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
        frameworks=config.frameworks,
        upgrade_to=_upgrade_to(args),
    )
    return config, settings


def _upgrade_to(args: argparse.Namespace) -> str | None:
    """--upgrade-to, checked against the known releases (a usage error otherwise)."""
    version = getattr(args, "upgrade_to", None)
    if version is None:
        return None
    try:
        return resolve(bundled_versions(), explicit=version, explicit_source="--upgrade-to").version
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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


def invalid_objects(item: Item, settings: Settings) -> list[Finding]:
    """manifest-invalid findings for an object the API server would reject."""
    severity = settings.severities.get(MANIFEST_INVALID.id, MANIFEST_INVALID.severity)
    problems = object_problems(item.obj, settings.frameworks)
    if severity is None or not problems:
        return []
    ref = object_ref(item.obj, metadata(item.obj).get("namespace") or settings.namespace)
    return [Finding(rule=MANIFEST_INVALID.id, severity=severity, message=message, hint=MANIFEST_INVALID.fix,
                    object=ref, file=item.file, line=line) for message, line in problems]


def _stated_namespace(obj: Mapping[str, object]) -> str | None:
    namespace = metadata(obj).get("namespace")  # type: ignore[arg-type]
    return namespace if isinstance(namespace, str) and namespace else None


def scoped_analysis(items: Sequence[Item], settings: Settings, apply_together: bool,
                    workloads: list[Workload] | None = None) -> list[Finding]:
    """The engine over each scope of the input: objects pair across files only when they state
    the same namespace; objects that state none pair only within their own file (or stream),
    seeing the namespaced objects of that file as context. ``apply_together``: one scope.
    ``workloads`` receives each container examined."""
    if apply_together:
        return analyze(items, settings, workloads=workloads)
    by_namespace: dict[str, list[Item]] = {}
    by_file: dict[str | None, list[Item]] = {}
    namespaced_in: dict[str | None, list[Mapping[str, Any]]] = {}
    for item in items:
        namespace = _stated_namespace(item.obj)
        if namespace is None:
            by_file.setdefault(item.file, []).append(item)
        else:
            by_namespace.setdefault(namespace, []).append(item)
            namespaced_in.setdefault(item.file, []).append(item.obj)
    findings = [f for scope in by_namespace.values() for f in analyze(scope, settings, workloads=workloads)]
    for file, scope in by_file.items():
        findings += analyze(scope, settings, context=namespaced_in.get(file, []), workloads=workloads)
    return findings


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
    unreadable = 0  # documents that are not valid YAML/JSON
    try:
        for document in iter_paths(args.paths, ignore=config.ignore_paths):
            files.add(document.path)
            unreadable += document.obj is None and not document.not_kubernetes
            if document.obj is not None:
                item = Item(document.obj, document.path)
                rejected = invalid_objects(item, settings)  # validity first: no other verdict
                findings += rejected
                items += [] if rejected else [item]
            elif document.not_kubernetes and args.skip_non_kubernetes:
                continue
            elif (invalid := invalid_document(document, settings)) is not None:
                findings.append(invalid)
    except ManifestError as exc:
        raise UsageError(str(exc)) from None
    workloads: list[Workload] = []
    findings += scoped_analysis(items, settings, getattr(args, "apply_together", False), workloads)
    objects = len(items) + len({(f.file, f.object) for f in findings if f.object and f.rule == MANIFEST_INVALID.id})
    report = Report(findings=visible(findings, args.show_info), files=len(files), objects=objects,
                    tool_version=__version__, rules=list(CATALOG.values()), workloads=workloads)
    emit(report, args)
    if not objects:
        print("vllm-env-guard lint: no Kubernetes objects found in the input", file=sys.stderr)
        if unreadable:
            return exit_code(report.findings)  # invalid YAML is a finding, not a usage error
        return exit_code(report.findings) if args.skip_non_kubernetes else 2
    return exit_code(report.findings)
