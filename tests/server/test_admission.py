"""admission.py alone: parsing, the decision, the wording of denials and warnings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from webhook.config import ConfigError
from webhook.engine import link_tables
from webhook.findings import Finding, Severity
from webhook.server.admission import (
    WARNING_LENGTH,
    WARNINGS_BUDGET,
    ClusterView,
    Decision,
    InvalidReview,
    decide,
    failure,
    fit_warnings,
    parse_review,
    parse_timeout,
    review_response,
    sanitize,
    warning_text,
)
from webhook.server.policy import CacheOptions, ServerPolicy, Snapshot, parse_policy, read_snapshot

from .conftest import OLD_IMAGE, pod, review, service, workload

BAD = {"VLLM_USE_V1": "true"}  # env-parse-error on 0.8.1: int("true")
TYPO = {"VLLM_LOGGING_LEVL": "DEBUG"}  # env-unknown-variable (warning)


def snapshot(**policy: Any) -> Snapshot:
    base = read_snapshot(None)
    return replace(base, policy=ServerPolicy(**policy))


def run(obj: dict[str, Any] | None, operation: str = "CREATE", view: ClusterView | None = None,
        snap: Snapshot | None = None, **kwargs: Any) -> Decision:
    request = parse_review(review(obj, operation, **kwargs))
    return decide(request, snap or snapshot(), view or ClusterView())


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "reason"), [
    ([], "the body must be a JSON object"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}, "kind must be AdmissionReview"),
    ({"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {}}, "apiVersion must be one of"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request is missing"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "x"}, "request must be a JSON object"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}},
     "request.uid is missing"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}},
     "request.uid must be a string"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "operation": "PATCH"}},
     "request.operation must be one of"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "operation": "CREATE"}},
     "request.object is missing"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {"uid": "u", "operation": "UPDATE", "object": [1]}}, "request.object must be a JSON object"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {"uid": "u", "operation": "CREATE", "object": {}, "dryRun": "yes"}}, "request.dryRun must be"),
])
def test_malformed_reviews_say_what_is_wrong(body: Any, reason: str) -> None:
    with pytest.raises(InvalidReview, match=reason):
        parse_review(body)


def test_delete_needs_no_object_and_kind_comes_from_the_request() -> None:
    request = parse_review(review(None, "DELETE", old=service()))
    assert (request.operation, request.kind, request.obj) == ("DELETE", "Service", None)
    bare = parse_review(review({"metadata": {"name": "x"}}, kind={"group": "apps", "version": "v1",
                                                                    "kind": "Deployment"}))
    assert (bare.obj["apiVersion"], bare.obj["kind"]) == ("apps/v1", "Deployment")


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("5s", 5.0), ("1m5s", 30.0), ("20s500ms", 20.5), ("500ms", 0.5), ("1.5s", 1.5), (None, 10.0), ("", 10.0),
    ("ten", 10.0), ("10", 10.0), ("0s", 10.0), ("10s ", 10.0), ("1h", 30.0),
])
def test_timeout_query_parameter(text: str | None, seconds: float) -> None:
    assert parse_timeout(text) == seconds


# --- what is checked --------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_pass_untouched(operation: str) -> None:
    decision = run(None, operation, old=service())
    assert decision.allowed and not decision.warnings and not decision.findings


def test_kinds_without_pod_specs_and_subresources_pass_untouched() -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vllm", "namespace": "llm"}}
    assert run(configmap).allowed and not run(configmap).warnings
    status = run(pod(BAD, OLD_IMAGE), "UPDATE", old=pod(), subResource="status")
    assert status.allowed and not status.findings


@pytest.mark.parametrize("kind", ["Pod", "PodTemplate", "ReplicationController", "Deployment", "StatefulSet",
                                  "DaemonSet", "ReplicaSet", "Job", "CronJob"])
def test_every_workload_kind_is_denied_on_an_error_and_admitted_when_clean(kind: str) -> None:
    denied = run(workload(kind, BAD, OLD_IMAGE))
    assert not denied.allowed
    assert denied.code == 403 and denied.reason == "Forbidden"
    assert "[env-parse-error]" in denied.message and "VLLM_USE_V1" in denied.message
    clean = run(workload(kind, {"VLLM_USE_V1": "1"}, OLD_IMAGE))
    assert clean.allowed and not clean.warnings


# --- denials ----------------------------------------------------------------------------------


def test_service_named_vllm_is_denied_with_an_actionable_message() -> None:
    decision = run(service())
    assert not decision.allowed
    lines = decision.message.splitlines()
    assert lines[0] == "Service llm/vllm would break vLLM (1 error):"
    assert lines[1].startswith("- [service-link-collision] Rename Service \"vllm\": it injects VLLM_PORT=tcp://10.96.0.12:8000")
    assert "Fix: rename the Service" in lines[1]
    assert lines[-1] == 'To accept this risk for this object, annotate it vllm-env-guard.io/ignore: "service-link-collision".'
    # the warning-level finding on the same Service still reaches kubectl
    assert decision.warnings[0].startswith("[service-link-prefix] VLLM_SERVICE_HOST: ")


def test_a_colliding_service_names_the_workloads_it_would_break() -> None:
    victims = [workload("Deployment", name="llm"), workload("StatefulSet", name="ranks",
                                                            enableServiceLinks=False)]
    decision = run(service(), view=ClusterView(workloads=victims))
    assert "it breaks Deployment llm/llm (container vllm)" in decision.message
    assert "ranks" not in decision.message  # service links off: not broken


def test_a_vllm_pod_in_a_namespace_with_a_colliding_service_is_denied() -> None:
    view = ClusterView(links=link_tables([service()], "llm"))
    denied = run(pod(), view=view)
    assert not denied.allowed and "[service-link-collision]" in denied.message
    assert run(pod(enableServiceLinks=False), view=view).allowed
    assert run(pod({"VLLM_PORT": "8000"}), view=view).allowed  # overridden
    assert run(pod(namespace="other"), view=view).allowed  # another namespace's Service


def test_errors_come_first_and_are_counted() -> None:
    obj = workload("Deployment", {**BAD, "VLLM_PORT": "tcp://x:1", **TYPO}, OLD_IMAGE)
    decision = run(obj)
    assert decision.message.startswith("Deployment llm/llm would break vLLM (2 errors):")
    assert decision.message.count("\n- [") == 2
    assert [w.split("]")[0] for w in decision.warnings] == ["[env-unknown-variable"]


def test_the_ignore_annotation_and_config_severities_apply() -> None:
    annotated = service()
    annotated["metadata"]["annotations"] = {"vllm-env-guard.io/ignore": "service-link-collision,service-link-prefix"}
    decision = run(annotated)
    assert decision.allowed and not decision.warnings
    off = replace(snapshot(), settings=replace(snapshot().settings, severities={"service-link-collision": None}))
    assert run(service(), snap=off).allowed
    raised = replace(snapshot(), settings=replace(snapshot().settings,
                                                  severities={"env-unknown-variable": Severity.ERROR}))
    assert not run(pod(TYPO), snap=raised).allowed


# --- modes ------------------------------------------------------------------------------------


def test_warn_mode_never_denies_and_says_which_warnings_were_errors() -> None:
    decision = run(service(), snap=snapshot(mode="warn"))
    assert decision.allowed
    assert decision.warnings[0].startswith("[service-link-collision, error, warn mode] VLLM_PORT: Rename Service")
    assert decision.warnings[1].startswith("[service-link-prefix]")


@pytest.mark.parametrize(("label", "policy_mode", "allowed", "warned"), [
    ("warn", "enforce", True, True),
    ("enforce", "warn", False, True),
    ("off", "enforce", True, False),
    ("bogus", "enforce", False, True),  # not a mode: the policy's applies
])
def test_the_namespace_label_overrides_the_mode(label: str, policy_mode: str, allowed: bool, warned: bool) -> None:
    view = ClusterView(namespace_labels={"vllm-env-guard.io/mode": label})
    decision = run(service(), view=view, snap=snapshot(mode=policy_mode))
    assert decision.allowed is allowed
    assert bool(decision.warnings) is warned


def test_the_namespace_label_can_be_turned_off() -> None:
    view = ClusterView(namespace_labels={"vllm-env-guard.io/mode": "off"})
    assert not run(service(), view=view, snap=snapshot(namespace_label=None)).allowed


# --- UPDATE -----------------------------------------------------------------------------------


def test_update_keeping_an_old_error_warns_and_a_new_error_denies() -> None:
    old = workload("Deployment", BAD, OLD_IMAGE)
    same = run(workload("Deployment", {**BAD, "VLLM_LOGGING_LEVEL": "DEBUG"}, OLD_IMAGE), "UPDATE", old=old)
    assert same.allowed
    assert same.warnings[0].startswith("[env-parse-error, error, pre-existing] VLLM_USE_V1")
    new = run(workload("Deployment", {**BAD, "VLLM_PORT": "tcp://x:1"}, OLD_IMAGE), "UPDATE", old=old)
    assert not new.allowed
    assert "VLLM_PORT" in new.message and "VLLM_USE_V1" not in new.message
    assert any(w.startswith("[env-parse-error, error, pre-existing]") for w in new.warnings)


def test_update_that_fixes_the_old_error_is_clean() -> None:
    decision = run(workload("Deployment", {"VLLM_USE_V1": "1"}, OLD_IMAGE), "UPDATE",
                   old=workload("Deployment", BAD, OLD_IMAGE))
    assert decision.allowed and not decision.warnings


def test_updates_enforce_denies_old_errors_too() -> None:
    old = workload("Deployment", BAD, OLD_IMAGE)
    assert not run(old, "UPDATE", old=old, snap=snapshot(updates="enforce")).allowed


def test_dry_run_decides_the_same() -> None:
    assert not run(service(), dry_run=True).allowed
    assert parse_review(review(service(), dry_run=True)).dry_run


# --- failure modes ----------------------------------------------------------------------------


def test_unknown_cluster_state_with_failure_mode_allow_checks_the_object_alone_and_says_why() -> None:
    view = ClusterView(problem="services not listed yet")
    clean = run(pod(), view=view)
    assert clean.allowed
    note = "vllm-env-guard: checked without cluster state (services not listed yet; failureMode: allow)"
    assert clean.warnings == (note,) and clean.failure == "cache_unavailable"
    assert not run(pod(BAD, OLD_IMAGE), view=view).allowed  # what the object itself shows still counts


def test_unknown_cluster_state_with_failure_mode_deny_denies() -> None:
    decision = run(pod(), view=ClusterView(problem="services not listed yet"), snap=snapshot(failure_mode="deny"))
    assert not decision.allowed
    assert (decision.code, decision.reason, decision.failure) == (503, "ServiceUnavailable", "cache_unavailable")
    assert "services not listed yet" in decision.message


def test_failure_answers() -> None:
    request = parse_review(review(pod()))
    allowed = failure(request, ServerPolicy(), "internal error (KeyError)", "internal_error")
    assert allowed.allowed
    assert allowed.warnings == ("vllm-env-guard: admitted unchecked (failureMode: allow): internal error (KeyError)",)
    denied = failure(request, ServerPolicy(failure_mode="deny"), "boom", "internal_error")
    assert not denied.allowed and denied.code == 500 and "boom" in denied.message


# --- the response -----------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_response_in_the_version_received_with_the_uid_and_never_a_patch(api_version: str) -> None:
    request = parse_review(review(service(), api_version=api_version, uid="abc-123"))
    body = review_response(request, decide(request, snapshot(), ClusterView()))
    assert body["apiVersion"] == api_version and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "abc-123" and response["allowed"] is False
    assert response["status"]["code"] == 403 and response["status"]["reason"] == "Forbidden"
    assert "patch" not in response and "patchType" not in response
    allowed = review_response(request, decide(request, snapshot(mode="warn"), ClusterView()))["response"]
    assert allowed["allowed"] is True and "status" not in allowed and allowed["warnings"]


# --- warnings within the API server's limits --------------------------------------------------


def finding(message: str, rule: str = "env-unknown-variable", variable: str | None = "VLLM_X") -> Finding:
    return Finding(rule=rule, severity=Severity.WARNING, message=message, variable=variable)


def test_warnings_have_no_control_characters_and_valid_utf8() -> None:
    assert sanitize("a\nb\tc\r\x1b[31md\x85e\ud800f") == "a b c [31md e f"
    text = warning_text(finding("line one\nline two"))
    assert text == "[env-unknown-variable] VLLM_X: line one line two"


def test_long_warnings_are_shortened_keeping_rule_and_variable() -> None:
    (text,) = fit_warnings([warning_text(finding("x" * 300))])
    assert len(text) == WARNING_LENGTH and text.endswith("…")
    assert text.startswith("[env-unknown-variable] VLLM_X: xxx")


def test_warnings_are_deduplicated_in_order() -> None:
    assert fit_warnings(["b", "a", "b", "", "\n", "a"]) == ("b", "a")


def test_warnings_stay_within_the_budget_and_count_what_was_left_out() -> None:
    texts = [f"{i:03d} " + "w" * 200 for i in range(60)]
    kept = fit_warnings(texts)
    assert sum(len(t) for t in kept) <= WARNINGS_BUDGET
    assert kept[:-1] == tuple(shortened[:WARNING_LENGTH - 1] + "…" for shortened in texts[:len(kept) - 1])
    assert kept[-1] == f"vllm-env-guard: {60 - (len(kept) - 1)} more warnings not shown; run vllm-env-guard lint for all"
    assert len(kept) > 30


# --- the server section of the config file ----------------------------------------------------


def test_the_server_section_with_every_setting() -> None:
    policy = parse_policy({"mode": "warn", "namespaceLabel": "", "failureMode": "deny", "updates": "enforce",
                           "maxBodyBytes": 1 << 20, "lookupBudgetSeconds": 0.5,
                           "cache": {"configMaps": True, "workloads": False}})
    assert policy == ServerPolicy(mode="warn", namespace_label=None, failure_mode="deny", updates="enforce",
                                  max_body_bytes=1 << 20, lookup_budget=0.5,
                                  cache=CacheOptions(configmaps=True, workloads=False))
    assert parse_policy({}) == ServerPolicy()


def test_every_problem_in_the_server_section_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy({"mode": "deny", "namespaceLabel": "Bad Label", "maxBodyBytes": 10, "lookupBudgetSeconds": True,
                      "cache": {"x": 1, "workloads": "yes"}, "extra": 1}, "c.yaml")
    assert caught.value.problems == [
        "c.yaml:1: server.extra: unknown setting (known: mode, namespaceLabel, failureMode, updates, maxBodyBytes, "
        "lookupBudgetSeconds, cache)",
        'c.yaml:1: server.namespaceLabel: expected a label key such as vllm-env-guard.io/mode, or "" to disable, '
        "found 'Bad Label'",
        "c.yaml:1: server.maxBodyBytes: expected a byte count from 1024 to 67108864, found 10",
        "c.yaml:1: server.lookupBudgetSeconds: expected seconds, more than 0 and at most 10, found True",
        "c.yaml:1: server.cache.x: unknown setting (known: configMaps, workloads)",
        "c.yaml:1: server.cache.workloads: expected true or false, found 'yes'",
        "c.yaml:1: server.mode: expected enforce or warn, found 'deny'",
    ]
