"""Helpers for rule tests: lint YAML text with the real loader and engine."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from webhook.engine import Item, Settings, analyze
from webhook.findings import Finding
from webhook.manifests import load_text

Lint = Callable[..., list[Finding]]


def lint_text(text: str, rule: str | None = None, **settings: object) -> list[Finding]:
    documents = load_text(textwrap.dedent(text), "test.yaml")
    assert all(d.error is None for d in documents), [d.error for d in documents]
    findings = analyze([Item(d.obj, d.path) for d in documents if d.obj is not None],
                       Settings(**settings))  # type: ignore[arg-type]
    return [f for f in findings if rule is None or f.rule == rule]


@pytest.fixture
def lint() -> Lint:
    return lint_text


def deployment(env: str = "", image: str = "vllm/vllm-openai:v0.9.2", namespace: str = "llm",
               extra_spec: str = "", args: str = "", annotations: str = "") -> str:
    """A vLLM Deployment; `env` is the YAML list of env entries (indented 8 spaces)."""
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: llm
          namespace: {namespace}
        spec:
          template:
            metadata:
              annotations: {{{annotations}}}
            spec:
              {extra_spec or "restartPolicy: Always"}
              containers:
              - name: vllm
                image: {image}
                args: [{args}]
                env:
        """) + textwrap.indent(textwrap.dedent(env), " " * 8)


def service(name: str, namespace: str = "llm", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
          namespace: {namespace}
        spec:
          {extra or "type: ClusterIP"}
          selector: {{app: vllm}}
          ports:
          - name: http
            port: 8000
        """)


def env(name: str, value: str) -> str:
    return f"- name: {name}\n  value: {value!r}\n"
