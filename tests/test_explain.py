"""`vllm-env-guard explain`: the done-when of the registry issue, through the real CLI."""

from __future__ import annotations

import json

import pytest

from webhook.cli import main

ARGS = ["VLLM_PORT=tcp://10.96.0.12:8000", "VLLM_USE_V1=true", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH=0"]


def explain_json(capsys: pytest.CaptureFixture[str], *args: str, code: int = 1) -> list[dict]:
    """The JSON explanations; `code`: the exit code expected (1: vLLM fails on a value)."""
    assert main(["explain", *args, "--format", "json"]) == code
    return json.loads(capsys.readouterr().out)


def test_seed_release_crash_crash_surprise(capsys: pytest.CaptureFixture[str]) -> None:
    port, v1, keep_alive = explain_json(capsys, *ARGS, "--vllm-version", "0.8.1")
    assert port["result"] == {"error": "ValueError",
                              "message": "invalid literal for int() with base 10: 'tcp://10.96.0.12:8000'"}
    assert port["findings"] == ["env-parse-error"] and port["vllm_version"] == "0.8.1"
    assert v1["result"]["error"] == "ValueError" and v1["findings"] == ["env-parse-error"]
    assert keep_alive["result"] == {"value": "True", "type": "bool"}
    assert keep_alive["findings"] == ["env-silent-coercion"]


def test_newest_release_does_something_else(capsys: pytest.CaptureFixture[str]) -> None:
    port, v1, keep_alive = explain_json(capsys, *ARGS, "--vllm-version", "0.33.0")
    assert "appears to be a URI" in port["result"]["message"]
    assert v1["result"] is None and v1["findings"] == ["env-unknown-variable"]
    assert keep_alive["result"] == {"value": "False", "type": "bool"} and keep_alive["findings"] == []


def test_text_output_names_parser_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", *ARGS, "--vllm-version", "0.8.1"]) == 1
    out = capsys.readouterr().out
    assert "parser: bool(int(os.getenv('VLLM_USE_V1', '1')))" in out
    assert 'hint: use "1" to turn it on and "0" to turn it off' in out
    assert 'service-link value (a Service named "vllm" injects VLLM_PORT)' in out


def test_unset_and_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    unset, key = explain_json(capsys, "VLLM_PORT", "VLLM_API_KEY=sk-live-secret", code=0)
    assert unset["raw"] is None and unset["result"] == {"value": "None", "type": "NoneType"}
    assert key["raw"] == "<redacted>" and "sk-live-secret" not in json.dumps(key)
    assert main(["explain", "VLLM_API_KEY=sk-live-secret"]) == 0
    assert "sk-live-secret" not in capsys.readouterr().out


@pytest.mark.parametrize("args", [["explain", "=x"], ["explain", "VLLM_X=1", "--vllm-version", "banana"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main(args) == 2
    assert "vllm-env-guard explain:" in capsys.readouterr().err
