"""`vllm-env-guard registry list|show|import`."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

from webhook.cli import UsageError, write_stdout
from webhook.registry import bundled_versions, load_registry, resolve
from webhook.registry.checks import WHERE
from webhook.registry.fetch import FetchError
from webhook.registry.importer import ImportRefused, ImportResult
from webhook.registry.model import Registry
from webhook.registry.store import releases_with


def _registry(version: str | None) -> Registry:
    try:
        return load_registry(resolve(bundled_versions(), explicit=version).version)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run_registry(args: argparse.Namespace) -> int:
    actions = {"list": _list, "show": _show, "update": _update, "images": _images}
    return actions.get(args.action, _import)(args)


def _update(args: argparse.Namespace) -> int:
    from webhook.registry import bundle

    directory = Path(args.dir).expanduser() if args.dir else bundle.default_directory()
    try:
        added = bundle.update_directory(directory)
    except ImportRefused as exc:
        print(f"vllm-env-guard registry update: refused: {exc}\nnothing written", file=sys.stderr)
        return 1
    except (FetchError, ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    newest = bundled_versions()[-1]
    if not added:
        print(f"{directory}: up to date (no vLLM release on PyPI is newer than {newest} or already there)",
              file=sys.stderr)
    else:
        print(f"{directory}: imported vLLM {', '.join(added)}; use it with --registry-dir {directory}",
              file=sys.stderr)
    return 0


def _images(args: argparse.Namespace) -> int:
    from webhook.registry import distributions

    if args.image:
        resolution = resolve(bundled_versions(), image=args.image)
        if args.format == "json":
            print(json.dumps({"image": args.image, "vllm_version": resolution.version,
                              "reason": resolution.reason}, indent=2))
        else:
            print(f"{args.image}: vLLM {resolution.version} ({resolution.reason})")
        return 0
    rows = distributions.rows()
    if args.format == "json":
        print(json.dumps([r.to_json() for r in rows], indent=2))
        return 0
    width = max((len(", ".join(r.images)) + len(r.tag) + 1 for r in rows), default=10)
    print(f"# {len(rows)} images that ship vLLM without a vLLM version in their tag")
    for row in rows:
        image = f"{', '.join(row.images)}:{row.tag}"
        print(f"{image:<{width}}  vLLM {row.vllm:<12} {row.source}")
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.versions:
        write_stdout("".join(f"{version}\n" for version in bundled_versions()))
        return 0
    registry = _registry(args.vllm_version)
    if args.format == "json":
        write_stdout(json.dumps({"vllm_version": registry.version,
                                 "variables": [v.to_json() for v in registry]}, indent=2) + "\n")
        return 0
    width = max(len(v.name) for v in registry)
    torch = f" (pins torch {registry.facts.torch})" if registry.facts.torch else ""
    write_stdout(f"# vLLM {registry.version}{torch}: {len(registry)} variables\n"
                 + "".join(f"{var.name:<{width}}  {var.kind:<20} {var.description}\n" for var in registry))
    return 0


def suggest(name: str, names: list[str]) -> str | None:
    """The variable `name` was probably meant as: same letters in another case, else the closest."""
    same = [n for n in names if n.upper() == name.upper()]
    if same:
        return same[0]
    close = difflib.get_close_matches(name.upper(), names, n=1, cutoff=0.8)
    return close[0] if close else None


def _show(args: argparse.Namespace) -> int:
    registry = _registry(args.vllm_version)
    var = registry.get(args.variable)
    history = releases_with(args.variable)
    if var is None:
        where = f"; it exists in vLLM {history[0]} to {history[-1]}" if history else ""
        meant = None if history else suggest(args.variable, registry.names())
        raise UsageError(f"{args.variable} is not a variable of vLLM {registry.version}{where}"
                         + (f"; did you mean {meant}?" if meant else ""))
    unset = registry.evaluate(var, {})
    if args.format == "json":
        write_stdout(json.dumps({"vllm_version": registry.version, **var.to_json(),
                                 "unset": {"value": repr(unset.value)} if unset.ok else {"error": unset.error},
                                 "releases": history}, indent=2) + "\n")
        return 0
    rows = [
        ("variable", var.name), ("vLLM", registry.version), ("kind", var.kind),
        ("parser", var.expression), ("reads", ", ".join(var.reads) or "-"),
        ("default", var.default or "-"),
        ("when unset", repr(unset.value) if unset.ok else f"{unset.error}: {unset.message}"),
        ("choices", ", ".join(var.choices) + (" (case-insensitive)" if var.case_sensitive is False else "")
         if var.choices else "-"),
        ("build time", "yes" if var.build_time else "no"),
        ("then", WHERE[sink["check"]] if (sink := registry.facts.sinks.get(var.name)) else "-"),
        ("deprecated", var.deprecated or "no"),
        ("releases", f"{history[0]} to {history[-1]} ({len(history)} bundled)"),
        ("description", var.description or "-"),
    ]
    write_stdout("".join(f"{label + ':':<13} {value}\n" for label, value in rows))
    return 0


def _import(args: argparse.Namespace) -> int:
    from webhook.registry import bundle

    try:
        if args.wheel:
            name, _, version = args.wheel.partition("==")
            if name.strip().lower() != "vllm" or not version:
                raise UsageError(f"--wheel takes vllm==VERSION, not {args.wheel!r}")
            result = bundle.import_release(version.strip())
        elif args.envs_file:
            path = Path(args.envs_file)
            if not path.is_file():
                raise UsageError(f"{path}: no such file")
            result = bundle.import_file(path)
        else:
            result = bundle.import_installed()
    except ImportRefused as exc:
        print(f"vllm-env-guard registry import: refused: {exc}", file=sys.stderr)
        return 1
    except (FetchError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    _write(result, args.output)
    print(f"imported vLLM {result.facts.version}: {len(result.variables)} variables, all classified",
          file=sys.stderr)
    return 0


def _write(result: ImportResult, output: str | None) -> None:
    text = json.dumps({"vllm_version": result.facts.version, "facts": result.facts.to_json(),
                       "variables": [v.to_json() for v in result.variables]}, indent=2)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        write_stdout(text + "\n")
