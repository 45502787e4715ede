"""The bundled table is exactly what the importer makes of the real releases (no hand edits)."""

from __future__ import annotations

import pytest

from webhook.registry import load_registry
from webhook.registry.bundle import import_release

pytestmark = pytest.mark.conformance  # reads the releases from PyPI (cached after the first run)


@pytest.mark.parametrize("version", ["0.6.0", "0.8.1", "0.11.1", "0.33.0"])
def test_bundled_release_matches_a_fresh_import(version: str) -> None:
    fresh = import_release(version)
    bundled = load_registry(version)
    assert {v.name: v.to_json() for v in fresh.variables} == {v.name: v.to_json() for v in bundled}
    assert fresh.facts.to_json() == bundled.facts.to_json()
