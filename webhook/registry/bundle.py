"""Importing releases: from PyPI wheels, from an envs.py file, from an installed vLLM; and
regenerating the bundled table (`scripts/update-registries`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from webhook.registry import fetch, usage
from webhook.registry.importer import ImportRefused, ImportResult, import_envs
from webhook.registry.model import Variable, VersionFacts
from webhook.registry.store import (
    TABLE_FILE,
    build_table,
    bundled_versions,
    data_path,
    read_table,
    registry_from_table,
    write_table,
)
from webhook.registry.versions import Version

OLDEST = "0.6.0"


def import_release(version: str) -> ImportResult:
    """The registry of vLLM `version`, read from its PyPI wheel."""
    sources = fetch.fetch_sources(version)
    return import_envs(sources[fetch.ENVS_MEMBER] or "", version, sources.get,
                       source_name=f"vllm=={version}:vllm/envs.py",
                       wheel=fetch.fetch_wheel_facts(version))


def import_plugin(plugin: str, version: str) -> ImportResult:
    """The variables of a platform plugin release (`vllm-ascend`), from its PyPI wheel."""
    source = fetch.fetch_plugin_envs(plugin, version)
    if source is None:
        raise fetch.FetchError(f"{plugin} {version} has no envs module")
    return import_envs(source, version, source_name=f"{plugin}=={version}:envs.py")


def write_plugins(path: Path) -> dict[str, list[str]]:
    """Import every release on PyPI of every known platform plugin into `path` (plugins.json)."""
    from webhook.registry.plugins import PLUGINS, build

    imported: dict[str, list[tuple[VersionFacts, list[Variable]]]] = {}
    for plugin in PLUGINS:
        results = [import_plugin(plugin, v) for v in fetch.package_versions(plugin)]
        imported[plugin] = [(r.facts, r.variables) for r in results]
    path.write_text(json.dumps(build(imported), separators=(",", ":")) + "\n", encoding="utf-8")
    return {plugin: [facts.version for facts, _ in releases] for plugin, releases in imported.items()}


def import_file(path: Path, version: str | None = None) -> ImportResult:
    """The registry in an envs.py file; sibling modules (platforms/...) are read when present."""
    package = path.resolve().parent

    def module_source(member: str) -> str | None:
        candidate = package / member.removeprefix("vllm/")
        return candidate.read_text(encoding="utf-8") if candidate.is_file() else None

    return import_envs(path.read_text(encoding="utf-8"), version or _version_near(package) or "0.0.0",
                       module_source, source_name=str(path), wheel=_package_facts(package))


def _package_facts(package: Path) -> dict[str, Any] | None:
    """usage.wheel_facts over an unpacked vllm package (an installed vLLM), else None (a lone
    envs.py says nothing about the rest of the release)."""
    if not (package / "__init__.py").is_file():
        return None
    modules = {f"vllm/{p.relative_to(package).as_posix()}": p.read_text(encoding="utf-8", errors="replace")
               for p in package.rglob("*.py")}
    metadata = next(package.parent.glob("vllm-*.dist-info/METADATA"), None)
    return usage.wheel_facts(modules, metadata.read_text(encoding="utf-8") if metadata else "")


def import_installed() -> ImportResult:
    """The registry of the vLLM installed in this Python, located without importing it."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("vLLM is not installed in this Python environment")
    package = Path(next(iter(spec.submodule_search_locations)))
    return import_file(package / "envs.py", _version_near(package))


def _version_near(package: Path) -> str | None:
    """`__version__` from vllm/_version.py, read as text."""
    version_file = package / "_version.py"
    if not version_file.is_file():
        return None
    for line in version_file.read_text(encoding="utf-8").splitlines():
        if line.startswith(("__version__", "version")) and "=" in line:
            value = line.split("=", 1)[1].strip().strip("'\"")
            if Version.parse_or_none(value):
                return value
    return None


def default_directory() -> Path:
    """Where `registry update` writes by default: ~/.cache/vllm-env-guard/registries."""
    return fetch.cache_dir() / "registries"


def update_directory(directory: Path, jobs: int = 4) -> list[str]:
    """Import the releases on PyPI newer than every known one into `directory` (keeping the
    ones already there); returns the releases imported. Raises ImportRefused / FetchError."""
    path = directory / TABLE_FILE
    kept = read_table(path) if path.is_file() else None
    known = set(bundled_versions()) | set(kept["versions"] if kept else ())
    newest = max(Version.parse(v) for v in bundled_versions())
    new = [v for v in pypi_releases() if Version.parse(v) > newest and v not in known]
    if not new:
        return []
    with ThreadPoolExecutor(jobs) as pool:
        results = [(r.facts, r.variables) for r in pool.map(import_release, new)]
    if kept:
        for version in kept["versions"]:
            registry = registry_from_table(kept, version)
            results.append((registry.facts, list(registry)))
    write_table(build_table(results), path)
    return new


def pypi_releases(oldest: str = OLDEST) -> list[str]:
    floor = Version.parse(oldest)
    releases = [v for v in fetch.list_releases() if fetch.is_final_release(v)]
    return sorted((v for v in releases if Version.parse(v) >= floor), key=Version.parse)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="update-registries", description=__doc__)
    parser.add_argument("--min", default=OLDEST, help="oldest release to include (default 0.6.0)")
    parser.add_argument("--jobs", type=int, default=8, help="parallel downloads (default 8)")
    parser.add_argument("--output", type=Path, default=data_path())
    args = parser.parse_args(argv)
    started = time.monotonic()
    versions = pypi_releases(args.min)
    print(f"importing {len(versions)} releases {versions[0]} .. {versions[-1]}", file=sys.stderr)
    results = []
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for done, result in enumerate(pool.map(import_release, versions), 1):
                results.append(result)
                print(f"  [{done}/{len(versions)}] vllm {result.facts.version}: "
                      f"{len(result.variables)} variables", file=sys.stderr)
    except (ImportRefused, fetch.FetchError) as exc:
        print(f"update-registries: {exc}\nnothing written", file=sys.stderr)
        return 1
    table = build_table((r.facts, r.variables) for r in results)
    write_table(table, args.output)
    for plugin, releases in write_plugins(args.output.with_name("plugins.json")).items():
        print(f"  {plugin}: {', '.join(releases)}", file=sys.stderr)
    total = sum(len(r.variables) for r in results)
    print(f"wrote {args.output}: {len(versions)} releases, {total} variable entries in "
          f"{len(table['variables'])} rows, {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0
