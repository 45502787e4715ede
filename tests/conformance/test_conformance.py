"""Our parsers (webhook.registry.evaluate) against vLLM's real getters, value by value.

For every selected vLLM version, every variable (vLLM's and ours) is fed the tricky values of
`values.py` (and combinations for the other names it reads). The real outcome comes from the
release's own envs.py (`realenvs`, one subprocess per version, cached for the session); ours
must agree exactly: same exception class and message, or same repr and type, for every case
(the harness makes HOME, the temporary directory, uuid4, the CPU count and torch's version
identical on both sides; nothing our evaluator reports relaxes it). Our `var.reads` must cover
every name the real getter read.

Versions: VEG_CONFORMANCE_VERSIONS unset (or "all") = every bundled version; "ci" = the seed
0.8.1, the newest bundled, and the newest patch of every minor series; or a comma list.
"""

from __future__ import annotations

import os

import pytest

from .realenvs import (
    RealEnvsError,
    bundled_or_cached_versions,
    real_keys,
    registry_api,
    run_version,
    select_versions,
)

pytestmark = pytest.mark.conformance

SHOW = 10  # disagreeing cases listed per failing variable


def _versions() -> list[str]:
    api = registry_api()
    return select_versions(os.environ.get("VEG_CONFORMANCE_VERSIONS"), bundled_or_cached_versions(api))


def _names(version: str, api) -> list[str]:
    """vLLM's names of `version`, then ours that vLLM does not have."""
    names = real_keys(version)
    if api is not None:
        try:
            ours = list(api.load_registry(version).names())
        except Exception:  # noqa: BLE001 - reported by test_names_match
            ours = []
        names += [n for n in ours if n not in set(names)]
    return names


def pytest_generate_tests(metafunc):
    if "version" not in metafunc.fixturenames:
        return
    versions = _versions()
    if "name" not in metafunc.fixturenames:
        metafunc.parametrize("version", versions)
        return
    api = registry_api()
    params = []
    for version in versions:
        try:
            names = _names(version, api)
        except RealEnvsError:
            # reported by the test itself (it fails with the same error)
            params.append(pytest.param(version, "<real envs.py>", id=f"{version}-<real>"))
            continue
        params += [pytest.param(version, name, id=f"{version}-{name}") for name in names]
    metafunc.parametrize(("version", "name"), params)


@pytest.fixture(scope="module")
def api():
    found = registry_api()
    if found is None:
        pytest.skip("webhook.registry has no load_registry/evaluate yet")
    return found


def test_names_match(version, api, conformance_reports):
    """Our registry of `version` has exactly the keys of vLLM's environment_variables."""
    report = conformance_reports.get(version)
    assert report.our_names is not None, report.error
    real, ours = report.real_names, report.our_names
    missing = [n for n in real if n not in set(ours)]
    extra = [n for n in ours if n not in set(real)]
    duplicates = sorted({n for n in ours if ours.count(n) > 1})
    assert not (missing or extra or duplicates), (
        f"vLLM {version}: {len(real)} real names, {len(ours)} ours; missing from ours {missing}; "
        f"not in vLLM {extra}; duplicated in ours {duplicates}")


def test_variable(version, name, api, conformance_reports):
    """Every case of one variable agrees with vLLM's real getter, and our reads cover its reads."""
    if name == "<real envs.py>":
        run_version(version, [])  # raises the RealEnvsError of collection again
    report = conformance_reports.get(version)
    bad = report.by_variable().get(name, [])
    gap = report.missing_reads.get(name)
    if not bad and not gap:
        return
    total = report.cases_per_variable.get(name, 0)
    lines = [f"vLLM {version} {name}: {len(bad)} of {total} cases disagree"]
    lines += [f"  {item.describe()}" for item in bad[:SHOW]]
    if len(bad) > SHOW:
        lines.append(f"  ... and {len(bad) - SHOW} more")
    if gap:
        lines.append(f"  the real getter read {gap}, which our var.reads does not declare")
    pytest.fail("\n".join(lines), pytrace=False)
