"""service-link-collision and service-link-prefix, across objects."""

from __future__ import annotations

from tests.rules.conftest import Lint, deployment, env, service

BOTH = ("service-link-collision", "service-link-prefix")


def rules_of(findings) -> list[tuple[str, str, str]]:  # noqa: ANN001
    return sorted((f.rule, f.object.kind, str(f.severity)) for f in findings if f.rule in BOTH)


def test_service_named_vllm_is_reported_on_the_service_and_the_workload(lint: Lint) -> None:
    findings = lint(service("vllm") + "---\n" + deployment(env("VLLM_HOST_IP", "10.0.0.1")))
    collisions = [f for f in findings if f.rule == "service-link-collision"]
    on_service = next(f for f in collisions if f.object.kind == "Service")
    on_workload = next(f for f in collisions if f.object.kind == "Deployment")
    assert on_service.line == 4 and on_service.variable == "VLLM_PORT"
    assert "VLLM_PORT=tcp://10.96.0.12:8000" in on_service.message
    assert "appears to be a URI" in on_service.message
    assert on_service.message.startswith('Rename Service "vllm": it injects')
    assert "it breaks Deployment llm/llm (container vllm, test.yaml:25)" in on_service.message
    assert 'rename the Service (e.g. "llm")' in on_service.hint
    assert on_workload.container == "vllm" and on_workload.vllm_version == "0.9.2"
    assert "Service llm/vllm (test.yaml:4) injects VLLM_PORT=tcp://10.96.0.12:8000" in on_workload.message
    assert "enableServiceLinks: false" in on_workload.hint


def test_dp_master_service_collides_with_the_integer_port(lint: Lint) -> None:
    findings = lint(service("vllm-dp-master") + "---\n" + deployment(image="vllm/vllm-openai:v0.33.0"),
                    rule="service-link-collision")
    assert {f.variable for f in findings} == {"VLLM_DP_MASTER_PORT"}
    assert all("invalid literal for int()" in f.message for f in findings)


def test_a_service_alone_is_still_reported(lint: Lint) -> None:
    findings = lint(service("vllm"))
    assert rules_of(findings) == [("service-link-collision", "Service", "error"),
                                  ("service-link-prefix", "Service", "warning")]


def test_harmless_cases_stay_quiet(lint: Lint) -> None:
    quiet = [
        service("vllm", extra="clusterIP: None") + "---\n" + deployment(),           # headless
        service("vllm", extra="type: ExternalName"),  # no cluster IP
        service("llm-api") + "---\n" + deployment(),                                 # no VLLM_ prefix
        service("vllm", namespace="other") + "---\n" + deployment(namespace="llm"),   # other namespace
    ]
    for text in quiet[:2] + quiet[2:3]:
        assert rules_of(lint(text)) == [], text
    other_ns = lint(quiet[3])
    assert [f.object.kind for f in other_ns if f.rule == "service-link-collision"] == ["Service"]


def test_enable_service_links_false_and_explicit_override_protect_the_workload(lint: Lint) -> None:
    off = lint(service("vllm") + "---\n" + deployment(extra_spec="enableServiceLinks: false"))
    assert [f.object.kind for f in off if f.rule == "service-link-collision"] == ["Service"]
    message = next(f for f in off if f.rule == "service-link-collision").message
    assert "it breaks" not in message and "no vLLM workload seen in namespace llm receives it now" in message
    overridden = lint(service("vllm") + "---\n" + deployment(env("VLLM_PORT", "8001")))
    assert [f.object.kind for f in overridden if f.rule == "service-link-collision"] == ["Service"]


def test_a_non_vllm_workload_is_not_broken(lint: Lint) -> None:
    text = service("vllm") + "---\n" + deployment(image="nginx:1.27").replace("name: vllm\n", "name: web\n")
    findings = lint(text)
    assert [f.object.kind for f in findings if f.rule == "service-link-collision"] == ["Service"]


def test_prefix_only_service_warns_and_errors_with_fail_on_environ_validation(lint: Lint) -> None:
    router = service("vllm-router")
    assert rules_of(lint(router + "---\n" + deployment(image="vllm/vllm-openai:v0.33.0"))) == [
        ("service-link-prefix", "Service", "warning")]
    strict = deployment(image="vllm/vllm-openai:v0.33.0", args='"--fail-on-environ-validation"')
    findings = lint(router + "---\n" + strict, rule="service-link-prefix")
    assert sorted((f.object.kind, str(f.severity)) for f in findings)[0] == ("Deployment", "error")


def test_namespace_defaults_to_the_setting(lint: Lint) -> None:
    text = service("vllm").replace("  namespace: llm\n", "") + "---\n" + deployment().replace(
        "  namespace: llm\n", "")
    findings = lint(text, rule="service-link-collision", namespace="team-a")
    assert {f.object.namespace for f in findings} == {"team-a"}
    assert any(f.object.kind == "Deployment" for f in findings)
