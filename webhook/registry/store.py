"""The bundled registries: every vLLM release from 0.6.0, as one table with version ranges.

A variable whose getter, kind and documentation did not change across releases is stored once,
with the index range of the releases that have it; a release's registry is rebuilt on demand.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from webhook.memo import Memo
from webhook.registry.model import Registry, Variable, VersionFacts
from webhook.registry.versions import VERSION_ANNOTATION, Resolution, Version, resolve

DATA_FORMAT = 1
TABLE_FILE = "registries.json"  # in the package's data/ and in a `registry update` directory

_added: list[dict[str, Any]] = []  # tables of releases from use_directory(), newest last


def data_path() -> Path:
    return Path(str(resources.files("webhook.registry") / "data" / TABLE_FILE))


def read_table(path: Path) -> dict[str, Any]:
    """A registry table file (raises ValueError with the path on anything unusable)."""
    try:
        with path.open(encoding="utf-8") as f:
            table = json.load(f)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not a registry table: {exc}") from None
    if not isinstance(table, dict) or table.get("format") != DATA_FORMAT:
        raise ValueError(f"{path}: unsupported registry data format "
                         f"{table.get('format') if isinstance(table, dict) else None!r}")
    return table


@functools.cache
def _table() -> dict[str, Any]:
    return read_table(data_path())


def _tables() -> list[dict[str, Any]]:
    return [_table(), *_added]


def use_directory(directory: str | Path) -> list[str]:
    """Also know the releases `registry update` wrote into `directory` (`--registry-dir`,
    `registryDir`); returns those it adds. A release already bundled keeps its bundled row."""
    path = Path(directory).expanduser() / TABLE_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no such file; fill the directory with "
                         f"`vllm-env-guard registry update --dir {directory}`")
    table = read_table(path)
    known = set(bundled_versions())
    added = [v for v in table["versions"] if v not in known]
    if added:
        _added.append(table)
        for cached in (bundled_versions, load_registry, _histories, ever_read):
            cached.cache_clear()
        _RESOLVED.clear()
    return added


@functools.cache
def bundled_versions() -> list[str]:
    """Every known vLLM release (bundled, and added by use_directory), oldest first."""
    versions = {v for table in _tables() for v in table["versions"]}
    return sorted(versions, key=Version.parse)


_RESOLVED: Memo[tuple[str | None, str, str | None, str | None], Resolution] = Memo()


def resolve_known(explicit: str | None, explicit_source: str, annotation: str | None,
                  image: str | None) -> Resolution:
    """:func:`resolve` against the known releases, memoised (bounded) until they change."""
    return _RESOLVED.get(
        (explicit, explicit_source, annotation, image),
        lambda: resolve(bundled_versions(), explicit=explicit, explicit_source=explicit_source,
                        annotations={VERSION_ANNOTATION: annotation} if annotation else None, image=image),
        (annotation, image))


@functools.cache
def load_registry(version: str) -> Registry:
    """The registry of one known release (exact version string, e.g. "0.9.2")."""
    for table in _tables():
        if version in table["versions"]:
            return registry_from_table(table, version)
    raise KeyError(f"vLLM {version} is not bundled")


def registry_from_table(table: dict[str, Any], version: str) -> Registry:
    """Release `version` of a table (its index must hold it)."""
    index = table["versions"].index(version)
    facts = next(VersionFacts(version=version, **row[2]) for row in table["facts"]
                 if row[0] <= index <= row[1])
    variables = {row[2]["name"]: Variable.from_json(row[2], version) for row in table["variables"]
                 if row[0] <= index <= row[1]}
    return Registry(facts, variables)


def build_table(releases: Iterable[tuple[VersionFacts, Sequence[Variable]]]) -> dict[str, Any]:
    """Fold per-release registries (oldest first) into rows with version ranges."""
    ordered = sorted(releases, key=lambda r: Version.parse(r[0].version))
    versions = [facts.version for facts, _ in ordered]
    return {
        "format": DATA_FORMAT,
        "versions": versions,
        "facts": _ranges([[facts.to_json()] for facts, _ in ordered]),
        "variables": _ranges([[v.to_json() for v in variables] for _, variables in ordered]),
    }


def _ranges(per_version: list[list[dict[str, Any]]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    open_rows: dict[str, list[Any]] = {}
    for index, items in enumerate(per_version):
        for item in items:
            key = json.dumps(item, sort_keys=True)
            row = open_rows.get(key)
            if row is not None and row[1] == index - 1:
                row[1] = index
            else:
                row = [index, index, item]
                rows.append(row)
                open_rows[key] = row
    return rows


def write_table(table: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(table, separators=(",", ":"), sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")


def releases_with(name: str) -> list[str]:
    """The known releases whose registry has key `name`, oldest first."""
    return _histories().get(name, [])


@functools.cache
def _histories() -> dict[str, list[str]]:
    """Key name -> the known releases that have it (built once: names come from requests)."""
    found: dict[str, set[str]] = {}
    for table in _tables():
        for first, last, var in table["variables"]:
            found.setdefault(var["name"], set()).update(table["versions"][first:last + 1])
    return {name: sorted(versions, key=Version.parse) for name, versions in found.items()}


@functools.cache
def ever_read() -> frozenset[str]:
    """Every environment variable some known release reads (keys and getter reads)."""
    return frozenset(name for table in _tables() for _, _, var in table["variables"]
                     for name in (var["name"], *var["reads"]))
