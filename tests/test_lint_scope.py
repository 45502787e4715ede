"""Lint scope: objects pair across files only when they state the same namespace (or with
--apply-together); objects that state none pair only within their own file or stream."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from webhook.cli import main


def workload(name: str, namespace: str | None = None, image: str = "vllm/vllm-openai:v0.9.2") -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}{ns}\nspec:\n"
            f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
            f"    spec:\n      containers:\n      - name: engine\n        image: {image}\n")


def service(name: str = "vllm", namespace: str | None = None) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}{ns}\nspec:\n  ports: [{{port: 8000}}]\n"


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["lint", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)["findings"]


def errors_by_file(findings: list[dict[str, Any]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for f in findings:
        if f["severity"] == "error":
            result.setdefault(Path(f["file"]).name, []).append(f["rule"])
    return result


@pytest.fixture
def unrelated(tmp_path: Path) -> Path:
    """Unrelated examples in one directory; one file holds a Service named vllm."""
    (tmp_path / "chat.yaml").write_text(workload("chat"))
    (tmp_path / "embed.yaml").write_text(workload("embed", image="vllm/vllm-openai:v0.8.5"))
    (tmp_path / "web.yaml").write_text(workload("web", image="nginx:1.27"))
    (tmp_path / "router.yaml").write_text(service() + "---\n" + workload("router", image="nginx:1.27"))
    return tmp_path


def test_a_vllm_service_in_one_file_gives_errors_only_in_that_file(
        unrelated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = lint(capsys, str(unrelated))
    assert code == 1
    assert errors_by_file(findings) == {"router.yaml": ["service-link-collision"]}
    [collision] = [f for f in findings if f["rule"] == "service-link-collision"]
    assert "no vLLM workload seen in namespace default receives it now" in collision["message"]
    assert "0.9.2" not in collision["message"] and "0.8.5" not in collision["message"]  # no version lent


def test_apply_together_pairs_the_whole_directory(unrelated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = lint(capsys, str(unrelated), "--apply-together")
    assert code == 1
    assert errors_by_file(findings) == {"chat.yaml": ["service-link-collision"],
                                        "embed.yaml": ["service-link-collision"],
                                        "router.yaml": ["service-link-collision"]}
    [on_service] = [f for f in findings if f["object"]["kind"] == "Service" and f["rule"] == "service-link-collision"]
    chat, embed = unrelated / "chat.yaml", unrelated / "embed.yaml"
    assert (f"it breaks Deployment default/chat (container engine, {chat}:11), "
            f"Deployment default/embed (container engine, {embed}:11)") in on_service["message"]


def test_objects_stating_the_same_namespace_pair_across_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(workload("chat", namespace="llm"))
    (tmp_path / "b.yaml").write_text(service(namespace="llm"))
    (tmp_path / "c.yaml").write_text(workload("other", namespace="default"))
    (tmp_path / "d.yaml").write_text(service())  # no namespace: its own file only
    _, findings = lint(capsys, str(tmp_path))
    assert errors_by_file(findings) == {"a.yaml": ["service-link-collision"],
                                        "b.yaml": ["service-link-collision"],
                                        "d.yaml": ["service-link-collision"]}
    [on_b] = [f for f in findings if f["file"].endswith("b.yaml") and f["rule"] == "service-link-collision"]
    assert f"it breaks Deployment llm/chat (container engine, {tmp_path / 'a.yaml'}:12)" in on_b["message"]


def test_a_stream_is_one_scope(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        (service() + "---\n" + workload("chat")).encode())))
    _, findings = lint(capsys, "-")
    assert sorted(f["object"]["kind"] for f in findings if f["rule"] == "service-link-collision") == [
        "Deployment", "Service"]


def test_unnamespaced_objects_of_one_file_see_its_namespaced_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mixed.yaml").write_text(service() + "---\n" + workload("chat", namespace="default"))
    _, findings = lint(capsys, str(tmp_path))
    [on_service] = [f for f in findings if f["object"]["kind"] == "Service" and f["rule"] == "service-link-collision"]
    assert "it breaks Deployment default/chat" in on_service["message"]
