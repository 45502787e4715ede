"""The engine's work is bounded whatever an object holds, and secrets never show (issue 9)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from webhook.budget import Budget, OutOfTime
from webhook.engine import UNREAD_CHECKED, Item, Settings, analyze
from webhook.findings import Finding, Severity
from webhook.kube import effective_environment
from webhook.kube.environment import MAX_ENV_STRING
from webhook.registry import load_registry
from webhook.registry.model import OUTCOMES_KEPT

IMAGE = "vllm/vllm-openai:v0.8.1"
SECRET = "hf_canary_9f8e7d6c5b4a"  # must never appear in any finding


def pod(env: list[dict[str, Any]], image: str = IMAGE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "llm"},
            "spec": {"containers": [{"name": "vllm", "image": image, "env": env}]}}


def lit(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def findings(obj: dict[str, Any], *context: dict[str, Any]) -> list[Finding]:
    return analyze([Item(obj)], Settings(namespace="llm"), context=context)


def doubling(steps: int) -> list[dict[str, str]]:
    return [lit("B0", "x" * 1024), *(lit(f"B{i}", f"$(B{i - 1})$(B{i - 1})") for i in range(1, steps + 1))]


def test_doubling_references_stop_at_the_kernel_limit_and_are_an_error() -> None:
    obj = pod([lit("VLLM_PORT", "tcp://10.96.0.12:8000"), *doubling(22)])
    env = effective_environment(obj["spec"]["containers"][0], obj["spec"], "llm", [], {}, {})
    assert max(len(v) for var in env.defined.values() for v in var.possible if v) <= MAX_ENV_STRING
    oversize = [name for name, var in env.defined.items() if var.oversize]
    assert oversize == [f"B{i}" for i in range(7, 23)]  # 1 KiB * 2**7 = 128 KiB plus the name
    found = findings(obj)
    assert {f.variable for f in found if f.rule == "env-value-too-large"} == set(oversize)
    assert any(f.rule == "env-parse-error" and f.variable == "VLLM_PORT" for f in found)


def test_a_single_literal_over_the_limit_is_an_error() -> None:
    found = findings(pod([lit("VLLM_PORT", "1" * 200_000)]))
    big = [f for f in found if f.rule == "env-value-too-large"]
    assert [(f.variable, f.severity) for f in big] == [("VLLM_PORT", Severity.ERROR)]
    assert all(len(f.message) < 1000 for f in found), "a finding quotes the whole value"


def test_expansions_past_the_container_budget_are_unknown_and_said() -> None:
    big = "y" * 100_000
    env = [lit("BIG", big), *(lit(f"C{i}", "$(BIG)") for i in range(10)), lit("VLLM_USE_V1", "$(BIG)")]
    found = findings(pod(env))
    incomplete = [f for f in found if f.rule == "check-incomplete"]
    assert len(incomplete) == 1 and incomplete[0].severity is Severity.ERROR
    assert "$(VAR) references were not expanded" in incomplete[0].message


def test_forty_thousand_unread_names_are_counted_not_checked_one_by_one() -> None:
    env = [lit("VLLM_PORT", "tcp://10.96.0.12:8000"), *(lit(f"VLLM_X{i}", "1") for i in range(40_000))]
    found = findings(pod(env))
    assert any(f.rule == "env-parse-error" and f.variable == "VLLM_PORT" for f in found)
    assert sum(f.rule == "env-unknown-variable" for f in found) == UNREAD_CHECKED
    [summary] = [f for f in found if f.rule == "check-incomplete"]
    assert f"{40_000 - UNREAD_CHECKED} VLLM_* variables" in summary.message
    assert summary.severity is Severity.WARNING  # vLLM ignores them: no crash hides there


def test_unread_names_are_an_error_when_vllm_refuses_unknown_names() -> None:
    obj = pod([lit(f"VLLM_X{i}", "1") for i in range(UNREAD_CHECKED + 5)], image="vllm/vllm-openai:v0.17.0")
    obj["spec"]["containers"][0]["args"] = ["--fail-on-environ-validation"]
    [summary] = [f for f in findings(obj) if f.rule == "check-incomplete"]
    assert summary.severity is Severity.ERROR


@pytest.mark.parametrize("credential", [
    lit("HF_TOKEN", SECRET),
    {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
    lit("MY_SETTING", SECRET) | {"name": "AWS_SECRET_ACCESS_KEY"},
])
@pytest.mark.parametrize("use", [
    lit("VLLM_PORT", "$(HF_TOKEN)"), lit("VLLM_USE_V1", "$(AWS_SECRET_ACCESS_KEY)"),
    lit("VLLM_LOGGING_LEVEL", "x$(HF_TOKEN)x"), lit("VLLM_PORT", "$(AWS_SECRET_ACCESS_KEY)"),
])
def test_a_secret_reached_through_an_expansion_is_never_shown(credential: dict[str, Any],
                                                              use: dict[str, str]) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf", "namespace": "llm"},
              "data": {"token": base64.b64encode(SECRET.encode()).decode()}}
    found = findings(pod([credential, use]), secret)
    text = json.dumps([f.to_json() for f in found])
    assert SECRET not in text and SECRET.upper() not in text
    if use["value"].startswith("$(") and credential["name"] in use["value"]:
        assert any(f.variable == use["name"] and f.severity is Severity.ERROR for f in found)


def test_a_cancelled_budget_stops_the_analysis() -> None:
    budget = Budget()
    budget.cancel()
    with pytest.raises(OutOfTime):
        analyze([Item(pod([lit("VLLM_PORT", "8000")]))], Settings(), budget=budget)
    assert not Budget.within(60).exhausted() and Budget(0).exhausted()


def test_getter_outcomes_are_memoised_within_bounds() -> None:
    registry = load_registry("0.8.1")
    for i in range(OUTCOMES_KEPT + 10):
        registry.evaluate("VLLM_PORT", {"VLLM_PORT": str(i)})
    registry.evaluate("VLLM_PORT", {"VLLM_PORT": "9" * 10_000})
    assert len(registry._outcomes) <= OUTCOMES_KEPT
    assert all(len(value or "") <= 256 for _, values in registry._outcomes for value in values)
