"""Session-wide cache of conformance reports (one real subprocess per version) and a terminal
summary of what was compared (printed without -s)."""

from __future__ import annotations

import time

import pytest

from .realenvs import VersionReport, compare_version, registry_api


class ReportCache:
    """compare_version() once per version per session, whichever test asks first."""

    def __init__(self) -> None:
        self.reports: dict[str, VersionReport] = {}
        self.errors: dict[str, str] = {}
        self.started = time.perf_counter()

    def get(self, version: str) -> VersionReport:
        if version in self.errors:
            pytest.fail(self.errors[version], pytrace=False)
        if version not in self.reports:
            try:
                self.reports[version] = compare_version(version, registry_api())
            except Exception as exc:  # RealEnvsError: the real side could not run
                self.errors[version] = f"vLLM {version}: {type(exc).__name__}: {exc}"
                pytest.fail(self.errors[version], pytrace=False)
        return self.reports[version]


_CACHE_KEY = pytest.StashKey[ReportCache]()


@pytest.fixture(scope="session")
def conformance_reports(request) -> ReportCache:
    cache = request.config.stash.get(_CACHE_KEY, None)
    if cache is None:
        cache = ReportCache()
        request.config.stash[_CACHE_KEY] = cache
    return cache


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    cache = config.stash.get(_CACHE_KEY, None)
    if cache is None or not (cache.reports or cache.errors):
        return
    write = terminalreporter.write_line
    terminalreporter.section("vLLM env conformance")
    total_cases = total_bad = total_gaps = total_relaxed = 0
    seconds_real = seconds_ours = 0.0
    for version, report in cache.reports.items():
        write(report.line())
        total_cases += report.cases
        total_bad += len(report.disagreements)
        total_gaps += len(report.missing_reads)
        total_relaxed += report.relaxed
        seconds_real += report.seconds_real
        seconds_ours += report.seconds_ours
    for version, error in cache.errors.items():
        write(f"{version:<12} NOT RUN: {error.splitlines()[0]}")
    rate = total_cases / seconds_real if seconds_real else 0.0
    write(f"total: {len(cache.reports)} versions, {total_cases} cases, {total_bad} disagreements, "
          f"{total_gaps} reads gaps, {total_relaxed} by kind only; real {seconds_real:.1f}s ({rate:,.0f} cases/s), "
          f"ours {seconds_ours:.1f}s")
