"""Prometheus metrics, named in the style of Kyverno (`kyverno_admission_requests_total`,
`kyverno_admission_review_duration_seconds`) and Gatekeeper (`admission_dryrun` label).

Each server has its own registry, so several can live in one process (tests). Label values
come from closed sets (a kind the server does not know is `other`), so no request can grow the
series, and every collector is rendered on its own: one that fails is left out of the scrape
(and counted in `vllm_env_guard_scrape_errors_total`) instead of failing it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook import __version__
from webhook.findings import Finding
from webhook.kube import WORKLOAD_KINDS
from webhook.server.logs import log_exception

PREFIX = "vllm_env_guard"
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
KINDS = frozenset({kind for _, kind in WORKLOAD_KINDS} | {"Service"})
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
OTHER = "other"


def closed(value: str, known: frozenset[str]) -> str:
    """`value` if it is one of `known`, else `other`: request fields never become label values."""
    return value if value in known else OTHER


@dataclass(frozen=True)
class CacheStats:
    """One watched resource, as the cache reports it at scrape time."""

    resource: str
    synced: bool
    objects: int
    age_seconds: float  # since the API server was last heard from (list, event, bookmark)
    relists: int
    errors: int


class _CacheCollector(Collector):
    def __init__(self, stats: Callable[[], Iterable[CacheStats]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(f"{PREFIX}_cache_age_seconds",
                                "Seconds since the cache last heard from the API server, by resource.",
                                labels=["resource"])
        synced = GaugeMetricFamily(f"{PREFIX}_cache_synced", "1 once the resource has been listed.",
                                   labels=["resource"])
        objects = GaugeMetricFamily(f"{PREFIX}_cache_objects", "Objects held, by resource.", labels=["resource"])
        relists = CounterMetricFamily(f"{PREFIX}_cache_relists", "Full lists after the first one "
                                      "(watch expired with 410 Gone, or an error).", labels=["resource"])
        errors = CounterMetricFamily(f"{PREFIX}_cache_watch_errors", "Failed list or watch calls.",
                                     labels=["resource"])
        for s in self.stats():
            age.add_metric([s.resource], s.age_seconds)
            synced.add_metric([s.resource], 1.0 if s.synced else 0.0)
            objects.add_metric([s.resource], s.objects)
            relists.add_metric([s.resource], s.relists)
            errors.add_metric([s.resource], s.errors)
        yield from (age, synced, objects, relists, errors)


class _One:
    """One collector as a registry, so it can be rendered on its own."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterable[Metric]:
        return self.collector.collect()


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series (process-wide setting)
        self.collectors: list[Collector] = []
        Info(f"{PREFIX}_build", "Version of the server.", registry=self).info({"version": __version__})
        self.requests = Counter(f"{PREFIX}_admission_requests_total", "AdmissionReviews answered.",
                                ["kind", "operation", "allowed", "dry_run"], registry=self)
        self.duration = Histogram(f"{PREFIX}_admission_review_duration_seconds",
                                  "Time to answer an AdmissionReview.", ["kind", "operation", "allowed"],
                                  buckets=DURATION_BUCKETS, registry=self)
        self.findings = Counter(f"{PREFIX}_findings_total", "Findings in admitted or denied objects.",
                                ["rule", "severity"], registry=self)
        self.failures = Counter(f"{PREFIX}_admission_failures_total",
                                "Requests answered by the failure mode (cache unavailable, internal error, "
                                "timeout, busy, shutdown).", ["reason", "allowed"], registry=self)
        self.invalid = Counter(f"{PREFIX}_invalid_requests_total",
                               "Bodies refused before review: malformed (400), too large (413), too slow (408).",
                               ["reason"], registry=self)
        self.reloads = Counter(f"{PREFIX}_reloads_total", "Reloads of changed files.", ["what", "result"],
                               registry=self)
        self.cert_expiry = Gauge(f"{PREFIX}_certificate_expiry_timestamp_seconds",
                                 "notAfter of the certificate being served (Unix time).", registry=self)
        self.cert_remaining = Gauge(f"{PREFIX}_certificate_expiry_seconds",
                                    "Seconds until the certificate being served expires (negative: expired).",
                                    registry=self)
        self.in_progress = Gauge(f"{PREFIX}_reviews_in_progress",
                                 "Reviews being checked or waiting for a worker.", registry=self)
        self.scrape_errors = Counter(f"{PREFIX}_scrape_errors_total",
                                     "Collectors left out of a scrape because they failed.", registry=self)
        self._not_after: dt.datetime | None = None
        self.cert_remaining.set_function(self._seconds_left)

    def certificate(self, not_after: dt.datetime) -> None:
        """The certificate now served expires at `not_after` (aware UTC)."""
        self._not_after = not_after
        self.cert_expiry.set(not_after.timestamp())

    def _seconds_left(self) -> float:
        if self._not_after is None:
            return 0.0
        return (self._not_after - dt.datetime.now(dt.UTC)).total_seconds()

    def register(self, collector: Collector) -> None:
        """Called by each metric given `registry=self` (the CollectorRegistry protocol)."""
        self.collectors.append(collector)

    def watch_cache(self, stats: Callable[[], Iterable[CacheStats]]) -> None:
        self.register(_CacheCollector(stats))

    def admission(self, kind: str, operation: str, allowed: bool, dry_run: bool, seconds: float,
                  findings: Iterable[Finding]) -> None:
        flag = "true" if allowed else "false"
        kind, operation = closed(kind, KINDS), closed(operation, OPERATIONS)
        self.requests.labels(kind, operation, flag, "true" if dry_run else "false").inc()
        self.duration.labels(kind, operation, flag).observe(seconds)
        for finding in findings:
            self.findings.labels(finding.rule, str(finding.severity)).inc()

    def render(self) -> bytes:
        """The text exposition; a collector that fails is logged and left out."""
        parts = []
        for collector in self.collectors:
            try:
                parts.append(generate_latest(_One(collector)))  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - one broken collector must not fail the scrape
                self.scrape_errors.inc()
                log_exception("metrics collector failed", collector=type(collector).__name__)
        return b"".join(parts)
