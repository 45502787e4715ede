"""manifest-invalid: objects the API server would reject are reported first, and get no other verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rules.conftest import deployment, service
from webhook.cli import main


def lint(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str) -> tuple[int, list[dict]]:
    (tmp_path / "in.yaml").write_text(text)
    code = main(["lint", str(tmp_path / "in.yaml"), "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)["findings"]


def test_unquoted_env_value_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = lint(tmp_path, capsys, deployment("- name: VLLM_USE_V1\n  value: 1\n"))
    assert code == 1
    [finding] = findings
    assert (finding["rule"], finding["severity"], finding["line"]) == ("manifest-invalid", "error", 18)
    assert "VLLM_USE_V1 = 1 is not a string" in finding["message"] and '(quote it: "1")' in finding["message"]


def test_service_named_in_capitals_is_invalid_not_a_collision(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = lint(tmp_path, capsys, service("VLLM") + "---\n" + deployment())
    assert code == 1
    assert [(f["rule"], f["object"]["kind"], f["line"]) for f in findings] == [("manifest-invalid", "Service", 4)]
    assert "DNS-1035 label" in findings[0]["message"]


@pytest.mark.parametrize(("text", "expected"), [
    (service("vllm.api"), "DNS-1035 label"),
    (service("x" * 64), "at most 63 characters"),
    (deployment().replace("name: llm\n", "name: LLM_App\n", 1), "DNS-1123 subdomain"),
    (deployment(image=""), "containers[0].image: Required value"),
    (deployment("- value: x\n"), "env[0].name: Required value"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {selector: {app: x}}\n",
     "spec.ports: Required value"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 70000}]}\n",
     "is not a port number"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {namespace: llm}\nspec: {containers: [{name: a, image: b}]}\n",
     "metadata.name: Required value"),
    ("apiVersion: kubeai.org/v1\nkind: Model\nmetadata: {name: m}\nspec:\n  engine: VLLM\n"
     "  template: {spec: {containers: [{name: a, env: [{name: VLLM_X, value: true}]}]}}\n", None),
])
def test_what_the_api_server_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                     expected: str | None) -> None:
    _, findings = lint(tmp_path, capsys, text)
    invalid = [f["message"] for f in findings if f["rule"] == "manifest-invalid"]
    assert (expected is None and invalid == []) or (len(invalid) == 1 and expected in invalid[0]), invalid


def test_valid_special_cases_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    headless = "apiVersion: v1\nkind: Service\nmetadata: {name: peers}\nspec: {clusterIP: None}\n"
    external = "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: a.b}\n"
    generated = ("apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: dl-}\n"
                 "spec: {template: {spec: {containers: [{name: a, image: b}]}}}\n")
    code, findings = lint(tmp_path, capsys, "---\n".join([headless, external, generated]))
    assert (code, findings) == (0, [])


def test_a_file_of_only_invalid_yaml_is_an_error_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: [unclosed\n")
    assert main(["lint", str(tmp_path / "bad.yaml")]) == 1
    assert "manifest-invalid" in capsys.readouterr().out
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert main(["lint", str(tmp_path / "empty.yaml")]) == 2  # no documents: still a usage error
