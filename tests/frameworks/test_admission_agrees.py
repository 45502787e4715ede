"""Lint and admission agree on the framework cases: each object admitted with the rest of its
file in the cluster cache gets the findings lint gives it (and the Services its controller makes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.frameworks.test_cases import CASES
from tests.server.conftest import review
from webhook.engine import Item, Settings, analyze, link_tables
from webhook.findings import Finding, Severity
from webhook.frameworks import CATALOG
from webhook.manifests import read_file
from webhook.server.admission import ClusterView, decide, parse_review
from webhook.server.policy import read_snapshot


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj))  # what the API server sends: JSON, no line numbers


def _key(finding: Finding) -> tuple[str, ...]:
    return finding.rule, str(finding.severity), str(finding.variable), str(finding.container)


def _owner(finding: Finding, objects: list[dict[str, Any]]) -> int:
    """Which object of the file a lint finding belongs to (a modelled Service: its owner's)."""
    assert finding.object is not None
    for index, obj in enumerate(objects):
        made = [s["metadata"]["name"] for s in CATALOG.services(obj)]
        if (finding.object.kind, finding.object.name) == (obj["kind"], obj["metadata"]["name"]) or (
                finding.object.kind == "Service" and finding.object.name in made):
            return index
    raise AssertionError(finding)


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.glob("*.yaml")))
def test_each_object_gets_the_same_findings_at_admission(name: str) -> None:
    objects = [dict(d.obj) for d in read_file(str(CASES / name)) if d.obj is not None]
    linted = [f for f in analyze([Item(o) for o in objects], Settings()) if f.severity is not Severity.INFO]
    for index, obj in enumerate(objects):
        others = [_plain(o) for i, o in enumerate(objects) if i != index]
        service = obj["kind"] == "Service" and obj["apiVersion"] == "v1"
        services = [o for o in others if o["kind"] == "Service" and o["apiVersion"] == "v1"]
        view = ClusterView(links=link_tables(services), workloads=others if service else ())
        request = parse_review(review({**_plain(obj), "metadata": {**obj["metadata"], "namespace": "default"}}))
        decision = decide(request, read_snapshot(None), view)
        admitted = sorted(_key(f) for f in decision.findings)
        assert admitted == sorted(_key(f) for f in linted if _owner(f, objects) == index), (index, obj["kind"])
        assert decision.allowed == (not any(f.severity is Severity.ERROR for f in decision.findings))


def test_modelled_services_are_named_at_admission() -> None:
    [runtime] = [d.obj for d in read_file(str(CASES / "production-stack-vllmruntime.yaml"))]
    request = parse_review(review({**_plain(runtime), "metadata": {"name": "vllm", "namespace": "llm"}}))
    decision = decide(request, read_snapshot(None), ClusterView())
    assert not decision.allowed
    assert 'Rename Service "vllm" (made by VLLMRuntime vllm\'s controller)' in decision.message
    [service] = [f for f in decision.findings if f.rule == "service-link-collision" and f.object.kind == "Service"]
    assert service.object.name == "vllm" and service.object.namespace == "llm"
