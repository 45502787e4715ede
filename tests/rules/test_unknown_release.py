"""A workload whose vLLM release nothing names is checked against every known release."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from webhook.engine import Item, Settings, analyze
from webhook.findings import Finding, Severity
from webhook.registry import bundled_versions

CUSTOM = "registry.example.com/team/llm-server:2025.11"


def pod(image: str, env: dict[str, str], annotations: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "llm", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "server", "image": image, "command": ["vllm", "serve", "m"],
                                     "env": [{"name": k, "value": v} for k, v in env.items()]}]}}


def findings(obj: dict) -> list[Finding]:
    return analyze([Item(obj)], Settings(namespace="llm"))


def test_a_value_that_crashes_on_some_releases_is_an_error_naming_them() -> None:
    [crash] = [f for f in findings(pod(CUSTOM, {"VLLM_USE_V1": "true"})) if f.rule == "env-parse-error"]
    assert crash.severity is Severity.ERROR and crash.variable == "VLLM_USE_V1"
    assert 'VLLM_USE_V1="true" crashes on vLLM 0.6.4-0.11.0 (ValueError: ' in crash.message
    assert "ignored on vLLM 0.11.1-0.33.0" in crash.message and "vllm-env-guard.io/vllm-version" in crash.hint
    # the same value on a release that no longer reads it is no crash at all
    assert not [f for f in findings(pod("vllm/vllm-openai:v0.33.0", {"VLLM_USE_V1": "true"}))
                if f.severity is Severity.ERROR]


def test_pinning_the_release_with_the_annotation_ends_the_range() -> None:
    pinned = pod(CUSTOM, {"VLLM_USE_V1": "true"}, {"vllm-env-guard.io/vllm-version": "0.12.0"})
    assert not [f for f in findings(pinned) if f.rule == "env-parse-error"]


def test_unknown_names_are_only_those_no_release_in_the_range_reads() -> None:
    env = {"VLLM_ATTENTION_BACKEND": "FLASHINFER", "VLLM_TYPO_XYZ": "1"}
    unknown = [f.variable for f in findings(pod(CUSTOM, env)) if f.rule == "env-unknown-variable"]
    assert unknown == ["VLLM_TYPO_XYZ"]
    newest = [f.variable for f in findings(pod("vllm/vllm-openai:v0.33.0", env)) if f.rule == "env-unknown-variable"]
    assert newest == ["VLLM_ATTENTION_BACKEND", "VLLM_TYPO_XYZ"]


def test_the_json_report_gives_the_range(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(json.dumps(pod(CUSTOM, {})))
    result = subprocess.run([sys.executable, "-m", "webhook", "lint", str(path), "-f", "json"],
                            capture_output=True, text=True, check=False)
    [workload] = json.loads(result.stdout)["workloads"]
    known = bundled_versions()
    assert workload["vllm_version"] is None and workload["vllm_versions"] == [known[0], known[-1]]
    assert "every known vLLM release" in workload["vllm_version_reason"]
