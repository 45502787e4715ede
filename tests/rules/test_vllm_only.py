"""Only containers judged to run vLLM get vLLM's verdicts on values; one that cannot be judged
gets at most a warning saying so; recognition by image, framework image rules and vLLM's flags."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.rules.conftest import Lint
from webhook.detect import judge_vllm

BAD = "- name: VLLM_USE_V1\n  value: \"true\"\n"  # env-parse-error on vLLM 0.9.2


def pod(containers: str, annotations: str = "") -> str:
    return textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
          annotations: {%s}
        spec:
        """) % annotations + textwrap.indent(textwrap.dedent(containers), "  ")


def container(name: str, image: str, args: str = "[]", env: str = BAD, kind: str = "containers") -> str:
    listed = f"  env:\n{textwrap.indent(env, '  ')}" if env else ""
    return f"{kind}:\n- name: {name}\n  image: {image}\n  args: {args}\n{listed}"


def verdicts(findings) -> list[tuple[str, str, str]]:  # noqa: ANN001
    return sorted((f.container, f.rule, str(f.severity)) for f in findings if f.rule.startswith("env-"))


def test_nginx_gets_no_vllm_verdict(lint: Lint) -> None:
    assert verdicts(lint(pod(container("web", "nginx:1.27")), vllm_version="0.9.2")) == []


def test_an_init_container_beside_vllm_gets_none(lint: Lint) -> None:
    text = pod(container("vllm", "vllm/vllm-openai:v0.9.2", env="")
               + container("download", "python:3.12", kind="initContainers"))
    assert verdicts(lint(text)) == []


def test_a_container_that_cannot_be_judged_gets_a_warning_that_says_so(lint: Lint) -> None:
    [finding] = [f for f in lint(pod(container("server", "registry.example/llm/server:1")), vllm_version="0.9.2")
                 if f.rule == "env-parse-error"]
    assert str(finding.severity) == "warning"
    assert "not judged to run vLLM: image registry.example/llm/server:1" in finding.message
    assert 'vllm-env-guard.io/vllm: "true"' in finding.message


def test_the_annotation_makes_it_an_error_again(lint: Lint) -> None:
    text = pod(container("server", "registry.example/llm/server:1"), annotations='vllm-env-guard.io/vllm: "true"')
    assert verdicts(lint(text, vllm_version="0.9.2")) == [("server", "env-parse-error", "error")]


@pytest.mark.parametrize(("image", "args"), [
    ("vault.habana.ai/gaudi-docker/1.18.0/ubuntu22.04/habanalabs/pytorch-installer-2.4.0:latest",
     '["--model", "meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size", "8"]'),
    ("registry.example/custom:1", '["--model=Qwen/Qwen3-8B", "--served-model-name=qwen"]'),
    ("ghcr.io/llm-d/llm-d-cuda:v0.9.0", "[]"),
    ("rocm/vllm:rocm6.3.1_vllm_0.8.5_20250521", "[]"),
    ("rayproject/ray-llm:2.46.0-py311-cu124", "[]"),
    ("kserve/huggingfaceserver:v0.15.0", '["--model_name=x"]'),
])
def test_vllm_is_recognised_without_vllm_in_the_command(lint: Lint, image: str, args: str) -> None:
    assert verdicts(lint(pod(container("engine", image, args)), vllm_version="0.9.2")) == [
        ("engine", "env-parse-error", "error")]


@pytest.mark.parametrize(("image", "args"), [
    ("kserve/huggingfaceserver:v0.15.0", '["--model_name=x", "--backend=huggingface"]'),
    ("ghcr.io/llm-d/llm-d-inference-sim:0.0.4", '["--model", "x", "--served-model-name", "x"]'),
    ("aibrix/runtime:v0.3.0", "[]"),
    ("lmcache/lmstack-router:latest", "[]"),
])
def test_framework_components_that_are_not_vllm(image: str, args: str) -> None:
    verdict = judge_vllm({"image": image, "args": json.loads(args)}, None)
    assert verdict.runs is False and image in verdict.reason
