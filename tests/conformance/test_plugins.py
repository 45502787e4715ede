"""Platform plugins' variables (webhook.registry.plugins) against the plugins' real getters,
every bundled release, every case, exactly (same harness as vLLM's: realenvs.run_version)."""

from __future__ import annotations

import pytest

from webhook.registry import fetch
from webhook.registry.plugins import PLUGINS, load_plugin, plugin_versions

from .realenvs import _our_outcome, outcomes_agree, run_version
from .values import cases_for

pytestmark = pytest.mark.conformance

RELEASES = [(plugin, version) for plugin in PLUGINS for version in plugin_versions(plugin)]


def test_every_plugin_release_on_pypi_is_bundled() -> None:
    for plugin in PLUGINS:
        assert plugin_versions(plugin) == fetch.package_versions(plugin)


@pytest.mark.parametrize(("plugin", "version"), RELEASES, ids=[f"{p}-{v}" for p, v in RELEASES])
def test_plugin_getters_agree_with_the_real_ones(plugin: str, version: str) -> None:
    registry = load_plugin(plugin, version)
    cases = [(var.name, env) for var in registry for env in cases_for(var)]
    run = run_version(version, cases, plugin=plugin)
    assert sorted(run.keys) == sorted(registry.names())
    bad = []
    for (name, env), real in zip(cases, run.results):
        ours = _our_outcome(registry.evaluate(name, {**run.machine, **env}))
        reason = outcomes_agree(real, ours)
        if reason or not set(real["reads"]) <= set(registry[name].reads):
            bad.append(f"{name} {env}: real {real}; ours {ours} [{reason or 'reads'}]")
    assert not bad, f"{plugin} {version}: {len(bad)} of {len(cases)} cases disagree:\n" + "\n".join(bad[:10])
    assert len(cases) > 20 * len(registry)
