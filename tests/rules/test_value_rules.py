"""The value rules: a bad and a good manifest for each."""

from __future__ import annotations

import pytest

from tests.rules.conftest import Lint, deployment, env

V081 = "vllm/vllm-openai:v0.8.1"
V033 = "vllm/vllm-openai:v0.33.0"

CASES = [
    # rule, image, bad env, good env
    ("env-parse-error", V081, env("VLLM_USE_V1", "true"), env("VLLM_USE_V1", "1")),
    ("env-invalid-choice", V033, env("VLLM_WORKER_MULTIPROC_METHOD", "Spawn"),
     env("VLLM_WORKER_MULTIPROC_METHOD", "spawn")),
    ("env-silent-coercion", V081, env("VLLM_NO_USAGE_STATS", "true"), env("VLLM_NO_USAGE_STATS", "1")),
    ("env-unknown-variable", V033, env("VLLM_ATENTION_BACKEND", "FLASHINFER"),
     env("VLLM_LOGGING_LEVEL", "INFO")),
    ("env-no-effect", V033, env("CMAKE_BUILD_TYPE", "Release"), env("VLLM_LOGGING_LEVEL", "DEBUG")),
    ("env-plaintext-secret", V033, env("VLLM_API_KEY", "sk-live-1234"),
     "- name: VLLM_API_KEY\n  valueFrom:\n    secretKeyRef: {name: api, key: key}\n"),
]


@pytest.mark.parametrize(("rule", "image", "bad", "good"), CASES, ids=[c[0] for c in CASES])
def test_bad_fires_and_good_is_clean(lint: Lint, rule: str, image: str, bad: str, good: str) -> None:
    bad_findings = lint(deployment(bad, image=image), rule=rule)
    assert len(bad_findings) == 1, bad_findings
    finding = bad_findings[0]
    assert finding.line == 17  # the env entry, not the document start
    assert finding.container == "vllm" and finding.object.name == "llm"
    assert finding.hint
    assert lint(deployment(good, image=image)) == []


def test_parse_error_says_what_and_when(lint: Lint) -> None:
    lazy = lint(deployment(env("VLLM_USE_V1", "true"), image=V081), rule="env-parse-error")[0]
    assert "vLLM 0.8.1 raises ValueError: invalid literal for int() with base 10: 'true'" in lazy.message
    assert "the first time vLLM reads VLLM_USE_V1" in lazy.message
    assert "from the image vllm/vllm-openai:v0.8.1" in lazy.message
    assert lazy.hint == 'use "1" to turn it on and "0" to turn it off'
    eager = lint(deployment(env("VERBOSE", "true"), image=V033), rule="env-parse-error")[0]
    assert "at engine start" in eager.message


def test_silent_coercion_explains_the_parser(lint: Lint) -> None:
    finding = lint(deployment(env("VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "0"), image=V081),
                   rule="env-silent-coercion")[0]
    assert "reads it as True" in finding.message and "bool(os.getenv(" in finding.message
    assert finding.hint == 'use "1" to turn it on and remove the variable to turn it off'


def test_invalid_choice_suggests_the_right_case(lint: Lint) -> None:
    finding = lint(deployment(env("VLLM_WORKER_MULTIPROC_METHOD", "Spawn"), image=V033),
                   rule="env-invalid-choice")[0]
    assert "Valid options: ['spawn', 'fork']" in finding.message
    assert finding.hint == 'did you mean "spawn"? the choices are case-sensitive'


def test_unknown_variable_knows_removed_names_and_typos(lint: Lint) -> None:
    removed = lint(deployment(env("VLLM_USE_V1", "1"), image=V033), rule="env-unknown-variable")[0]
    assert "exists in vLLM 0.6.4 to 0.11.0" in removed.message
    typo = lint(deployment(env("VLLM_LOGGING_LEVL", "INFO"), image=V033), rule="env-unknown-variable")[0]
    assert "did you mean VLLM_LOGGING_LEVEL?" in typo.message
    assert "logs it as unknown at start" in typo.message


def test_unknown_variable_is_an_error_with_fail_on_environ_validation(lint: Lint) -> None:
    strict = deployment(env("VLLM_LOGGING_LEVL", "INFO"), image=V033, args='"--fail-on-environ-validation"')
    finding = lint(strict, rule="env-unknown-variable")[0]
    assert str(finding.severity) == "error" and "refuse to start" in finding.message


def test_no_effect_names_the_variable_really_read(lint: Lint) -> None:
    finding = lint(deployment(env("VLLM_USE_HPU_CONTIGUOUS_CACHE_FETCH", "1"), image=V081),
                   rule="env-no-effect")[0]
    assert "reads VLLM_CONTIGUOUS_PA" in finding.message


def test_plaintext_secret_never_prints_the_value(lint: Lint) -> None:
    findings = lint(deployment(env("VLLM_API_KEY", "sk-live-1234") + env("HF_TOKEN", "hf_abcdef"),
                               image=V033))
    assert {f.variable for f in findings if f.rule == "env-plaintext-secret"} == {"VLLM_API_KEY", "HF_TOKEN"}
    assert not any("sk-live-1234" in f.message + f.hint or "hf_abcdef" in f.message + f.hint
                   for f in findings)


def test_unverified_source_is_info(lint: Lint) -> None:
    text = deployment("- name: VLLM_USE_V1\n  valueFrom:\n    configMapKeyRef: {name: cm, key: v1}\n",
                      image=V081)
    finding = lint(text, rule="env-unverified-source")[0]
    assert str(finding.severity) == "info" and "ConfigMap cm" in finding.message


def test_configmap_in_the_same_input_is_checked(lint: Lint) -> None:
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: llm}\ndata: {v1: 'true'}\n"
    text = configmap + "---\n" + deployment(
        "- name: VLLM_USE_V1\n  valueFrom:\n    configMapKeyRef: {name: cm, key: v1}\n", image=V081)
    assert [f.rule for f in lint(text)] == ["env-parse-error"]


def test_internal_misuse_of_vllm_port(lint: Lint) -> None:
    bad = lint(deployment(args='"--port", "$(VLLM_PORT)"'), rule="env-internal-misuse")
    assert len(bad) == 1 and bad[0].variable == "VLLM_PORT"
    shell = lint(deployment(args='"sh", "-c", "vllm serve m --host $VLLM_HOST_IP"'), rule="env-internal-misuse")
    assert shell[0].variable == "VLLM_HOST_IP"
    assert lint(deployment(args='"--port", "8000"'), rule="env-internal-misuse") == []


def test_ignore_annotation_and_severity_override(lint: Lint) -> None:
    bad = deployment(env("VLLM_USE_V1", "true"), image=V081,
                     annotations='"vllm-env-guard.io/ignore": "env-parse-error"')
    assert lint(bad) == []
    plain = deployment(env("VLLM_USE_V1", "true"), image=V081)
    from webhook.findings import Severity

    lowered = lint(plain, severities={"env-parse-error": Severity.WARNING})
    assert [str(f.severity) for f in lowered] == ["warning"]
    assert lint(plain, severities={"env-parse-error": None}) == []


def test_version_annotation_and_option(lint: Lint) -> None:
    text = deployment(env("VLLM_USE_V1", "true"), image="vllm/vllm-openai:latest",
                      annotations='"vllm-env-guard.io/vllm-version": "0.8.1"')
    assert lint(text, rule="env-parse-error")[0].vllm_version == "0.8.1"
    newest = lint(deployment(env("VLLM_USE_V1", "true"), image="vllm/vllm-openai:latest"))
    assert [f.rule for f in newest] == ["env-unknown-variable"]
    forced = lint(deployment(env("VLLM_USE_V1", "true"), image="vllm/vllm-openai:latest"),
                  vllm_version="0.9.2")
    assert forced[0].rule == "env-parse-error" and "from --vllm-version" in forced[0].message


def test_value_rules_apply_to_non_vllm_containers_setting_vllm_variables(lint: Lint) -> None:
    text = deployment(env("VLLM_USE_V1", "true"), image="python:3.12").replace("name: vllm\n", "name: job\n")
    assert [f.rule for f in lint(text, vllm_version="0.8.1")] == ["env-parse-error"]


@pytest.mark.parametrize(("name", "credential"), [
    ("HF_TOKEN", True), ("TOS_SECRET_KEY", True), ("MY_DB_PASSWORD", True), ("S3_ACCESS_KEY_ID", True),
    ("AIBRIX_KV_CACHE_OL_TOKEN_VALIDATION_ENABLED", False), ("VLLM_MAX_TOKENS", False),
    ("VLLM_SECRET_SAUCE_ENABLED", False)])
def test_credential_names(name: str, credential: bool) -> None:
    from webhook.detect import is_credential

    assert is_credential(name) is credential


def test_unavailable_env_from_source_is_info(lint: Lint) -> None:
    text = deployment(image=V081).replace("        env:\n", "        envFrom:\n        - configMapRef: {name: settings}\n")
    finding = lint(text, rule="env-unverified-source")[0]
    assert str(finding.severity) == "info" and "ConfigMap settings" in finding.message
    assert finding.line == 17
    other_prefix = text.replace("- configMapRef", "- prefix: APP_\n          configMapRef")
    assert lint(other_prefix, rule="env-unverified-source") == []
