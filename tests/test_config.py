"""The config file: defaults, discovery, YAML 1.1 pitfalls and errors with line numbers."""

from __future__ import annotations

import textwrap

import pytest

from webhook.config import CONFIG_FILE, Config, ConfigError, load_config
from webhook.findings import Severity

RULES = {"env-unknown-variable", "service-link-prefix", "env-parse-error", "env-plaintext-secret"}


def write(directory, text: str, name: str = CONFIG_FILE) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def test_no_config_file_gives_defaults(tmp_path) -> None:
    config = load_config(None, cwd=str(tmp_path), known_rules=RULES)
    assert config == Config()


def test_config_file_in_the_current_directory(tmp_path) -> None:
    path = write(tmp_path, """
        vllmVersion: "0.9.2"
        namespace: llm
        rules:
          env-unknown-variable: error
          service-link-prefix: off     # YAML 1.1 reads a bare off as false
          env-plaintext-secret: "off"
          env-parse-error: info
        ignorePaths: ["charts/**/tests/**", vendor]
        server:
          mode: enforce
          failurePolicy: {anything: [goes]}
    """)
    config = load_config(None, cwd=str(tmp_path), known_rules=RULES)
    assert config == Config(
        vllm_version="0.9.2",
        namespace="llm",
        rules={"env-unknown-variable": Severity.ERROR, "service-link-prefix": None,
               "env-plaintext-secret": None, "env-parse-error": Severity.INFO},
        ignore_paths=("charts/**/tests/**", "vendor"),
        server={"mode": "enforce", "failurePolicy": {"anything": ["goes"]}},
        path=path,
    )
    assert config.rules["env-unknown-variable"] is Severity.ERROR
    assert config.rules["service-link-prefix"] is None
    assert "env-silent-coercion" not in config.rules


def test_explicit_path_wins_and_must_exist(tmp_path) -> None:
    write(tmp_path, "namespace: found\n")
    other = write(tmp_path, "namespace: given\n", name="other.yaml")
    assert load_config(other, cwd=str(tmp_path), known_rules=RULES).namespace == "given"
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(missing, known_rules=RULES)
    assert caught.value.problems == [f"{missing}: no such file"]


def test_empty_file_gives_defaults(tmp_path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    assert load_config(path, known_rules=RULES) == Config(path=path)


def test_every_problem_is_reported_with_its_line(tmp_path) -> None:
    path = write(tmp_path, """
        vllmVersion: 0.10
        namespace: LLM_prod
        vllm_version: "0.9.2"
        rules:
          env-unknown-variabel: error
          env-parse-error: fatal
          service-link-prefix: yes
          env-plaintext-secret: [error]
        ignorePaths: charts/
        server: enforce
    """)
    with pytest.raises(ConfigError) as caught:
        load_config(path, known_rules=RULES)
    assert caught.value.problems == [
        f"{path}:3: unknown setting 'vllm_version' (did you mean 'vllmVersion'?)",
        f"{path}:1: vllmVersion: expected a quoted version such as \"0.9.2\", found 0.1",
        f"{path}:2: namespace: expected a namespace name (lower-case letters, digits and '-'), found 'LLM_prod'",
        f"{path}:9: ignorePaths: expected a list of glob patterns, found 'charts/'",
        f"{path}:10: server: expected a mapping, found 'enforce'",
        f"{path}:5: rules: unknown rule 'env-unknown-variabel' (did you mean 'env-unknown-variable'?)",
        f"{path}:6: rules: env-parse-error: expected error, warning, info or off, found 'fatal'",
        f"{path}:7: rules: service-link-prefix: expected error, warning, info or off, found True",
        f"{path}:8: rules: env-plaintext-secret: expected error, warning, info or off, found ['error']",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


@pytest.mark.parametrize(("text", "problem"), [
    ("rules:\n  a: [\n", "2: invalid YAML: did not find expected node content"),
    ("- a\n- b\n", "1: expected a mapping of settings, found list"),
    ("namespace: a\n---\nnamespace: b\n", "3: expected one YAML document, found 2"),
    ("rules: [env-parse-error]\n", "1: rules: expected a mapping of rule id to level"),
])
def test_unusable_files(tmp_path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, known_rules=RULES)
    (message,) = caught.value.problems
    assert message.startswith(f"{path}:{problem}")
