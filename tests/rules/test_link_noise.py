"""Injected service-link names are reported by the service-link rules only, once per
(workload, Service)."""

from __future__ import annotations

from tests.rules.conftest import Lint, deployment, service

ROUTER_NEXT_TO_STRICT_POD = service("vllm-router") + "---\n" + deployment(
    image="vllm/vllm-openai:v0.33.0", args='"--fail-on-environ-validation"',
    extra_spec="restartPolicy: Always")


def test_optional_envfrom_does_not_re_report_link_names(lint: Lint) -> None:
    text = service("vllm-router") + "---\n" + deployment(image="vllm/vllm-openai:v0.33.0").replace(
        "        env:\n", "        envFrom:\n        - configMapRef: {name: extra, optional: true}\n        env:\n")
    assert [f for f in lint(text) if f.rule == "env-unknown-variable"] == []


def test_one_finding_per_workload_and_service(lint: Lint) -> None:
    on_pod = [f for f in lint(ROUTER_NEXT_TO_STRICT_POD) if f.object.kind == "Deployment"]
    assert [(f.rule, str(f.severity)) for f in on_pod] == [("service-link-prefix", "error")]
    assert "VLLM_ROUTER_SERVICE_HOST" in on_pod[0].message and "VLLM_ROUTER_PORT_8000_TCP_ADDR" in on_pod[0].message

