"""vLLM platform plugins that read their own variables (vllm-ascend: `vllm_ascend/envs.py`).

A plugin's `env_variables` dict is imported like vLLM's registry (by AST, never run), per release
on PyPI, into `data/plugins.json`; a workload whose image runs the plugin also reads these
variables. Only plugins with an envs module on PyPI are here (vllm-gaudi is not on PyPI).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from webhook.registry import distributions
from webhook.registry.model import Registry
from webhook.registry.store import DATA_FORMAT, build_table, registry_from_table
from webhook.registry.versions import Version, image_tag

# plugin -> the image repositories that run it (from the plugin's own installation docs).
PLUGINS: Mapping[str, tuple[str, ...]] = {
    "vllm-ascend": ("quay.io/ascend/vllm-ascend",),
}


def data_path() -> Path:
    return Path(str(resources.files("webhook.registry") / "data" / "plugins.json"))


@functools.cache
def _tables() -> dict[str, Any]:
    data = json.loads(data_path().read_text(encoding="utf-8"))
    if data.get("format") != DATA_FORMAT:
        raise RuntimeError(f"{data_path()}: unsupported plugin data format {data.get('format')}")
    return data["plugins"]


def plugin_versions(plugin: str) -> list[str]:
    """The bundled releases of `plugin`, oldest first (empty for an unknown plugin)."""
    table = _tables().get(plugin)
    return list(table["versions"]) if table else []


@functools.cache
def load_plugin(plugin: str, version: str) -> Registry:
    """The variables one bundled release of `plugin` reads (KeyError when not bundled)."""
    table = _tables().get(plugin)
    if table is None or version not in table["versions"]:
        raise KeyError(f"{plugin} {version} is not bundled")
    return registry_from_table(table, version)


def plugin_for_image(image: str) -> tuple[str, str, str] | None:
    """(plugin, bundled release, reason) for an image that runs a platform plugin, else None.

    The release comes from the tag (`quay.io/ascend/vllm-ascend:v0.9.1-openeuler` -> 0.9.1), as
    the nearest older bundled release; an image without a version tag gets the newest."""
    repository, _ = distributions.split_image(image)
    plugin = next((p for p, images in PLUGINS.items() if repository in images), None)
    if plugin is None:
        return None
    versions = plugin_versions(plugin)
    tag = image_tag(image) or ""
    wanted = Version.parse_or_none(tag)
    older = [v for v in versions if wanted is not None and Version.parse(v) <= wanted]
    if older:
        exact = Version.parse(older[-1]) == wanted
        how = f"from its tag {tag}" if exact else f"its tag {tag} is not bundled; the nearest older release"
        return plugin, older[-1], f"{image} runs {plugin} {older[-1]} ({how})"
    return plugin, versions[-1], f"{image} runs {plugin}; tag {tag!r} names no bundled release, assuming {versions[-1]}"


def build(imported: Mapping[str, Sequence[tuple[Any, Sequence[Any]]]]) -> dict[str, Any]:
    """The plugins.json document from per-plugin (facts, variables) releases."""
    return {"format": DATA_FORMAT, "plugins": {p: build_table(r) for p, r in imported.items()}}
