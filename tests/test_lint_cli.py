"""`vllm-env-guard lint` through the real CLI: inputs, exit codes, formats."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from webhook.cli import main

SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: vllm\n  namespace: llm\nspec:\n  ports: [{port: 8000}]\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: llm
  namespace: llm
spec:
  template:
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.9.2
        env:
        - name: VLLM_LOGGING_LEVEL
          value: INFO
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_input_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.yaml").write_text(DEPLOYMENT)
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 0 and "0 errors, 0 warnings" in out


def test_errors_exit_1_and_point_at_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "svc.yaml").write_text(SERVICE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deploy.yml").write_text(DEPLOYMENT)
    code, out, _ = run(capsys, str(tmp_path), "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert report["summary"] == {"files": 2, "objects": 2, "errors": 2, "warnings": 1, "infos": 0}
    by_kind = {(f["object"]["kind"], f["rule"]): f for f in report["findings"]}
    assert by_kind[("Service", "service-link-collision")]["line"] == 4
    workload = by_kind[("Deployment", "service-link-collision")]
    assert workload["file"].endswith("deploy.yml") and workload["line"] == 10
    assert workload["vllm_version"] == "0.9.2" and workload["container"] == "vllm"


def test_stdin_and_malformed_documents(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = SERVICE + "---\nkind: [unclosed\n---\n" + DEPLOYMENT
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, _ = run(capsys, "-", "--format", "json")
    findings = json.loads(out)["findings"]
    invalid = [f for f in findings if f["rule"] == "manifest-invalid"]
    assert code == 1 and len(invalid) == 1 and invalid[0]["file"] == "<stdin>" and invalid[0]["line"] == 9
    assert any(f["object"] and f["object"]["kind"] == "Deployment" for f in findings)


def test_no_objects_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    code, _, err = run(capsys, str(tmp_path / "empty.yaml"))
    assert code == 2 and "no Kubernetes objects" in err


def test_non_kubernetes_yaml_can_be_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "values.yaml").write_text("replicaCount: 2\n")
    code, out, _ = run(capsys, str(tmp_path / "values.yaml"))
    assert code == 2 and "manifest-invalid" in out
    code, out, _ = run(capsys, str(tmp_path / "values.yaml"), "--skip-non-kubernetes")
    assert code == 0 and "manifest-invalid" not in out
    (tmp_path / "broken.yaml").write_text("a: [\n")
    code, out, _ = run(capsys, str(tmp_path / "broken.yaml"), "--skip-non-kubernetes")
    assert "manifest-invalid" in out  # invalid YAML is still reported


@pytest.mark.parametrize("args", [[], ["/does/not/exist.yaml"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "" and err.startswith("vllm-env-guard lint:")


def test_config_file_turns_rules_off_and_sets_the_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "svc.yaml").write_text(SERVICE + "---\n" + DEPLOYMENT.replace("v0.9.2", "latest"))
    config = tmp_path / "guard.yaml"
    config.write_text('vllmVersion: "0.8.1"\nrules:\n  service-link-prefix: off\n  service-link-collision: warning\n')
    code, out, _ = run(capsys, str(tmp_path / "svc.yaml"), "--config", str(config), "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert {f["rule"] for f in report["findings"]} == {"service-link-collision"}
    assert {f["severity"] for f in report["findings"]} == {"warning"}
    assert {f["vllm_version"] for f in report["findings"]} == {"0.8.1"}
    config.write_text("rules:\n  no-such-rule: off\n")
    code, _, err = run(capsys, str(tmp_path / "svc.yaml"), "--config", str(config))
    assert code == 2 and "no-such-rule" in err


@pytest.mark.parametrize("fmt", ["text", "sarif", "junit", "github"])
def test_every_format_reports_the_collision(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    (tmp_path / "svc.yaml").write_text(SERVICE)
    code, out, _ = run(capsys, str(tmp_path / "svc.yaml"), "--format", fmt)
    assert code == 1 and "service-link-collision" in out
