"""cache.py against a scripted API: paging, watch events, 410 Gone, errors, what is kept.

(The same code against a real kube-apiserver, 410 from etcd compaction included, is in
tests/e2e/test_webhook.py.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.support import stopped_afterwards
from webhook.kube import links_for
from webhook.server.cache import NAMESPACES, SERVICES, WORKLOADS, ClusterCache, Reflector, Resource

from .conftest import pod, service, wait_until, workload


class Response:
    """A urllib3-like response: `data` for a list, `stream()` for a watch."""

    def __init__(self, data: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None,
                 block: bool = False) -> None:
        self.data = json.dumps(data or {}).encode()
        self.events = events or []
        self.unblocked = threading.Event()
        self.block = block

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for event in self.events:
            yield (json.dumps(event) + "\n").encode()
        if self.block:
            self.unblocked.wait(30)

    def shutdown(self) -> None:
        self.unblocked.set()

    def release_conn(self) -> None:
        pass


class Script:
    """A list function answering from a script; past the end, a response that blocks until
    stopped (as a watch; as a list it is empty)."""

    def __init__(self, *steps: Response | Exception) -> None:
        self.steps = list(steps)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Response:
        self.calls.append(kwargs)
        if not self.steps:
            return Response(block=True)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def listing(*items: dict[str, Any], version: str = "10", token: str | None = None) -> Response:
    return Response({"metadata": {"resourceVersion": version, **({"continue": token} if token else {})},
                     "items": [{k: v for k, v in i.items() if k not in ("apiVersion", "kind")} for i in items]})


def event(kind: str, obj: dict[str, Any], version: str) -> dict[str, Any]:
    return {"type": kind, "object": {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": version}}}


def names(reflector: Reflector, namespace: str = "llm") -> list[str]:
    return sorted(o["metadata"]["name"] for o in reflector.items(namespace))


@pytest.fixture
def started() -> Iterator[list[Reflector]]:
    yield from stopped_afterwards()


def run(started: list[Reflector], resource: Resource, script: Script) -> Reflector:
    reflector = Reflector(resource, script)
    started.append(reflector)
    reflector.start()
    return reflector


def test_pages_then_events_then_410_relists(started: list[Reflector]) -> None:
    script = Script(
        listing(service("vllm"), token="page2"),
        listing(service("api"), version="11"),
        Response(events=[
            event("ADDED", service("vllm-dp-master"), "12"),
            event("MODIFIED", service("api", ip="10.96.0.99"), "13"),
            event("DELETED", service("vllm"), "14"),
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
            {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}},
        ]),
        listing(service("fresh"), version="30"),
    )
    reflector = run(started, SERVICES, script)
    wait_until(lambda: names(reflector) == ["fresh"])
    assert reflector.stats().relists == 1 and reflector.error is None
    first, second, watch, relist, resumed = script.calls[:5]
    assert (first["limit"], first["_continue"], second["_continue"]) == (500, None, "page2")
    assert (watch["watch"], watch["resource_version"], watch["allow_watch_bookmarks"]) == (True, "11", True)
    assert "resource_version" not in relist
    assert resumed["resource_version"] == "30"
    kept = reflector.get("llm", "fresh")
    assert kept == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fresh", "namespace": "llm"},
                    "spec": {"clusterIP": "10.96.0.12", "ports": service()["spec"]["ports"]}}


def test_events_before_the_410_were_applied_and_a_finished_watch_resumes(started: list[Reflector]) -> None:
    script = Script(
        listing(service("a")),
        Response(events=[event("ADDED", service("b"), "11"),
                         {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}]),
        Response(events=[event("DELETED", service("a"), "16")]),
    )
    reflector = run(started, SERVICES, script)
    wait_until(lambda: names(reflector) == ["b"])
    assert [c.get("resource_version") for c in script.calls[1:4]] == ["10", "15", "16"]
    assert reflector.stats().relists == 0


def test_http_410_on_the_watch_relists(started: list[Reflector]) -> None:
    script = Script(listing(service("a")), ApiException(status=410, reason="Gone"), listing(service("b")))
    reflector = run(started, SERVICES, script)
    wait_until(lambda: names(reflector) == ["b"])
    assert reflector.stats().relists == 1 and reflector.stats().errors == 0


def test_errors_are_reported_until_a_list_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webhook.server.cache.BACKOFF", (0.05, 0.1))
    script = Script(*(ApiException(status=403, reason="Forbidden") for _ in range(1000)))
    cache = ClusterCache(lambda resource: script if resource is SERVICES else Script(listing()), workloads=False)
    cache.start()
    try:
        view = cache.view("llm", service=False, budget=0.2)
        assert view.problem in ("services not listed yet", "services not listed yet (HTTP 403 Forbidden)")
        wait_until(lambda: cache.services.error == "HTTP 403 Forbidden")
        assert cache.services.stats().errors >= 1
        script.steps[:] = [listing(service("vllm"))]
        wait_until(lambda: cache.services.error is None and cache.synced)
        view = cache.view("llm", service=False, budget=0.2)
        assert view.problem is None and view.links is not None
        assert [s["metadata"]["name"] for s in view.links("llm").services()] == ["vllm"]
    finally:
        cache.stop()


def test_a_broken_watch_is_a_problem_until_it_recovers(started: list[Reflector],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webhook.server.cache.BACKOFF", (0.3, 0.3))
    script = Script(listing(service("a")), ConnectionResetError("reset"), listing(service("a")))
    reflector = run(started, SERVICES, script)
    wait_until(lambda: reflector.error == "ConnectionResetError: reset")
    wait_until(lambda: reflector.error is None and len(script.calls) >= 4)


def test_only_vllm_workloads_are_kept_once_each() -> None:
    keep = {r.kind: r.keep for r in WORKLOADS}
    deployment = workload("Deployment")
    deployment["status"] = {"replicas": 1}
    deployment["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    deployment["metadata"]["labels"] = {"app": "llm"}
    kept = keep["Deployment"](deployment)
    assert kept is not None and set(kept) == {"apiVersion", "kind", "metadata", "spec"}
    assert kept["metadata"] == {"name": "llm", "namespace": "llm"}
    not_vllm = workload("Deployment", image="nginx:1")
    assert keep["Deployment"](not_vllm) is None
    annotated = workload("Deployment", image="registry/serving:1")
    annotated["spec"]["template"]["metadata"]["annotations"] = {"vllm-env-guard.io/vllm": "true"}
    assert keep["Deployment"](annotated) is not None

    def owned(obj: dict[str, Any], kind: str) -> dict[str, Any]:
        obj["metadata"]["ownerReferences"] = [{"kind": kind, "name": "x", "controller": True}]
        return obj

    assert keep["Pod"](pod()) is not None  # a bare Pod
    for kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        assert keep["Pod"](owned(pod(), kind)) is None  # named by its controller
    assert keep["Pod"](owned(pod(), "RayCluster")) is not None  # a controller we do not watch
    assert keep["ReplicaSet"](owned(workload("ReplicaSet"), "Deployment")) is None
    assert keep["ReplicaSet"](workload("ReplicaSet")) is not None
    assert keep["Job"](owned(workload("Job"), "CronJob")) is None


def test_a_workload_that_stops_running_vllm_leaves_the_cache(started: list[Reflector]) -> None:
    resource = next(r for r in WORKLOADS if r.kind == "Deployment")
    script = Script(listing(workload("Deployment")),
                    Response(events=[event("MODIFIED", workload("Deployment", image="nginx:1"), "11")]))
    reflector = run(started, resource, script)
    wait_until(lambda: reflector.synced.is_set() and names(reflector) == [])


def test_the_view_of_a_service_holds_the_namespaces_vllm_workloads_and_labels() -> None:
    namespace = {"metadata": {"name": "llm", "labels": {"vllm-env-guard.io/mode": "warn"}}}
    scripts = {
        SERVICES.name: Script(listing(service("vllm"), service("kubernetes", "default", "10.96.0.1"))),
        NAMESPACES.name: Script(listing(namespace)),
        "deployments": Script(listing(workload("Deployment"), workload("Deployment", namespace="other"))),
        "pods": Script(listing(pod())),
    }
    cache = ClusterCache(lambda r: scripts.get(r.name) or Script(listing()))
    cache.start()
    try:
        wait_until(lambda: cache.synced)
        for_service = cache.view("llm", service=True, budget=1)
        assert sorted(w["kind"] for w in for_service.workloads) == ["Deployment", "Pod"]
        assert for_service.links is None and for_service.problem is None
        assert for_service.namespace_labels == {"vllm-env-guard.io/mode": "warn"}
        for_pod = cache.view("llm", service=False, budget=1)
        links = links_for("llm", True, for_pod.links)
        assert [v.value for v in links.values("VLLM_PORT")] == ["tcp://10.96.0.12:8000"]
        assert [v.ref for v in links.values("KUBERNETES_SERVICE_HOST")] == ["default/kubernetes"]
        assert for_pod.workloads == [] and for_pod.configmaps is None
        assert {s.resource for s in cache.stats()} == {"services", "namespaces", *(r.name for r in WORKLOADS)}
    finally:
        cache.stop()


def test_http_410_on_the_list_lists_again_from_scratch(started: list[Reflector]) -> None:
    script = Script(listing(service("a"), token="page2"), ApiException(status=410, reason="Gone"),
                    listing(service("b")))
    reflector = run(started, SERVICES, script)
    wait_until(lambda: reflector.synced.is_set())
    assert names(reflector) == ["b"]  # the half-read first list was dropped
    assert [c.get("_continue") for c in script.calls[:3]] == [None, "page2", None]
    assert reflector.stats().errors == 0 and reflector.error is None


def test_a_watch_error_that_is_not_410_is_an_error_then_a_relist(started: list[Reflector],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webhook.server.cache.BACKOFF", (0.05, 0.05))
    script = Script(
        listing(service("a")),
        Response(events=[event("ADDED", service("b"), "11"),
                         {"type": "ERROR", "object": {"kind": "Status", "code": 500, "reason": "InternalError"}}]),
        listing(service("c"), version="20"),
    )
    reflector = run(started, SERVICES, script)
    wait_until(lambda: names(reflector) == ["c"])
    stats = reflector.stats()
    assert stats.errors == 1 and stats.relists == 1 and reflector.error is None
    assert script.calls[3]["resource_version"] == "20"


def test_a_synced_cache_that_starts_failing_is_a_problem_for_reviews(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webhook.server.cache.BACKOFF", (5.0, 5.0))  # stays failing during the test
    services = Script(listing(service("vllm")), ApiException(status=500, reason="Internal Server Error"))
    cache = ClusterCache(lambda r: services if r is SERVICES else Script(listing()), workloads=False)
    cache.start()
    try:
        wait_until(lambda: cache.services.error == "HTTP 500 Internal Server Error")
        assert cache.synced  # listed once: the objects are kept ...
        view = cache.view("llm", service=False, budget=0.2)
        assert view.problem == "services: HTTP 500 Internal Server Error"  # ... but reviews are told
        assert view.links is not None and [s["metadata"]["name"] for s in view.links("llm").services()] == ["vllm"]
    finally:
        cache.stop()
