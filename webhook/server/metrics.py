"""Prometheus metrics, named in the style of Kyverno (`kyverno_admission_requests_total`,
`kyverno_admission_review_duration_seconds`) and Gatekeeper (`admission_dryrun` label).

Each server has its own registry, so several can live in one process (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
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

PREFIX = "vllm_env_guard"
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series (process-wide setting)
        self.registry = CollectorRegistry()
        r = self.registry
        Info(f"{PREFIX}_build", "Version of the server.", registry=r).info({"version": __version__})
        self.requests = Counter(f"{PREFIX}_admission_requests_total", "AdmissionReviews answered.",
                                ["kind", "operation", "allowed", "dry_run"], registry=r)
        self.duration = Histogram(f"{PREFIX}_admission_review_duration_seconds",
                                  "Time to answer an AdmissionReview.", ["kind", "operation", "allowed"],
                                  buckets=DURATION_BUCKETS, registry=r)
        self.findings = Counter(f"{PREFIX}_findings_total", "Findings in admitted or denied objects.",
                                ["rule", "severity"], registry=r)
        self.failures = Counter(f"{PREFIX}_admission_failures_total",
                                "Requests answered by the failure mode (cache unavailable, internal error, timeout).",
                                ["reason", "allowed"], registry=r)
        self.invalid = Counter(f"{PREFIX}_invalid_requests_total",
                               "Bodies refused before review: malformed (400) or too large (413).",
                               ["reason"], registry=r)
        self.reloads = Counter(f"{PREFIX}_reloads_total", "Reloads of changed files.", ["what", "result"],
                               registry=r)
        self.cert_expiry = Gauge(f"{PREFIX}_certificate_expiry_timestamp_seconds",
                                 "notAfter of the certificate being served (Unix time).", registry=r)

    def watch_cache(self, stats: Callable[[], Iterable[CacheStats]]) -> None:
        self.registry.register(_CacheCollector(stats))

    def admission(self, kind: str, operation: str, allowed: bool, dry_run: bool, seconds: float,
                  findings: Iterable[Finding]) -> None:
        flag = "true" if allowed else "false"
        self.requests.labels(kind, operation, flag, "true" if dry_run else "false").inc()
        self.duration.labels(kind, operation, flag).observe(seconds)
        for finding in findings:
            self.findings.labels(finding.rule, str(finding.severity)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
