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

from webhook.registry.model import Registry, Variable, VersionFacts
from webhook.registry.versions import Version

DATA_FORMAT = 1


def data_path() -> Path:
    return Path(str(resources.files("webhook.registry") / "data" / "registries.json"))


@functools.cache
def _table() -> dict[str, Any]:
    with data_path().open(encoding="utf-8") as f:
        table = json.load(f)
    if table.get("format") != DATA_FORMAT:
        raise RuntimeError(f"{data_path()}: unsupported registry data format {table.get('format')}")
    return table


def bundled_versions() -> list[str]:
    """Every bundled vLLM release, oldest first."""
    return list(_table()["versions"])


@functools.cache
def load_registry(version: str) -> Registry:
    """The registry of one bundled release (exact version string, e.g. "0.9.2")."""
    table = _table()
    try:
        index = table["versions"].index(version)
    except ValueError:
        raise KeyError(f"vLLM {version} is not bundled") from None
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
    """The bundled releases whose registry has key `name`, oldest first."""
    return _histories().get(name, [])


@functools.cache
def _histories() -> dict[str, list[str]]:
    table = _table()
    indices: dict[str, set[int]] = {}
    for first, last, var in table["variables"]:
        indices.setdefault(var["name"], set()).update(range(first, last + 1))
    return {name: [table["versions"][i] for i in sorted(found)] for name, found in indices.items()}


@functools.cache
def ever_read() -> frozenset[str]:
    """Every environment variable some bundled release reads (keys and getter reads)."""
    return frozenset(name for _, _, var in _table()["variables"] for name in (var["name"], *var["reads"]))
