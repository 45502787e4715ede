"""makeEnvironmentVariables: vectors E1-E20 of the research doc, then what cannot be known."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from webhook.kube.environment import (
    Environment,
    Source,
    effective_environment,
    expanded_args,
    expanded_command,
)

from .test_services import CLUSTER, K8S, MASTER, VSVC, svc


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def cm(data: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "data": data}


def secret(data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "data": {k: b64(v) for k, v in data.items()}}


def build(
    env: Any = None,
    env_from: Any = None,
    *,
    links: bool | None = True,
    configmaps: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    services: list[dict[str, Any]] = CLUSTER,
    **kwargs: Any,
) -> Environment:
    """The environment of container ``c`` of a pod in ``llm`` (the §7 fixture cluster)."""
    container: dict[str, Any] = {"name": "c"}
    if env is not None:
        container["env"] = env
    if env_from is not None:
        container["envFrom"] = env_from
    spec: dict[str, Any] = {"containers": [container]}
    if links is not None:
        spec["enableServiceLinks"] = links
    return effective_environment(
        container, spec, "llm", services,
        {} if configmaps is None else configmaps,
        {} if secrets is None else secrets,
        **kwargs,
    )  # fmt: skip


def values(env: Environment) -> dict[str, str | None]:
    assert not env.errors
    return env.as_dict()


BASE = K8S | VSVC


# --- 7.2 ------------------------------------------------------------------------------------


def test_e0_no_env_is_the_service_links() -> None:
    assert values(build()) == BASE
    assert values(build(links=None)) == BASE  # enableServiceLinks defaults to true


def test_e1_literal_overrides_service_link() -> None:
    env = build([{"name": "VLLM_PORT", "value": "8000"}])
    assert values(env) == BASE | {"VLLM_PORT": "8000"}
    var = env["VLLM_PORT"]
    assert (var.source, var.origin) == (Source.ENV, "env[0]")
    assert var.entry == {"name": "VLLM_PORT", "value": "8000"}
    assert var.overrides is not None
    assert var.overrides.source is Source.SERVICE_LINK
    assert var.overrides.value == "tcp://10.96.0.12:8000"
    assert var.overrides.origin == "Service llm/vllm"
    assert [link.ref for link in var.overrides.links] == ["llm/vllm"]
    assert [v.source for v in var.history()] == [Source.ENV, Source.SERVICE_LINK]
    assert var.overridden_link is var.overrides
    assert var.overrides.overridden_link is None


def test_e2_empty_value_is_set_and_overrides() -> None:
    env = build([{"name": "VLLM_PORT", "value": ""}])
    assert values(env) == BASE | {"VLLM_PORT": ""}
    assert env["VLLM_PORT"].overrides.source is Source.SERVICE_LINK


def test_e3_self_reference_resolves_to_service_link() -> None:
    env = build([{"name": "VLLM_PORT", "value": "$(VLLM_PORT)"}])
    assert values(env) == BASE
    assert env["VLLM_PORT"].source is Source.ENV


def test_e4_env_from_configmap() -> None:
    env = build(
        env_from=[{"configMapRef": {"name": "cm"}}], configmaps={"cm": cm({"VLLM_PORT": "8001"})}
    )
    assert values(env) == BASE | {"VLLM_PORT": "8001"}
    var = env["VLLM_PORT"]
    assert (var.source, var.origin) == (Source.ENV_FROM, "envFrom[0]: ConfigMap cm key VLLM_PORT")
    assert var.overrides.source is Source.SERVICE_LINK


def test_e5_env_from_prefix() -> None:
    env = build(
        env_from=[{"prefix": "VLLM_", "configMapRef": {"name": "cm"}}],
        configmaps={"cm": cm({"PORT": "8001", "HOST_IP": "0.0.0.0"})},
    )
    assert values(env) == BASE | {"VLLM_PORT": "8001", "VLLM_HOST_IP": "0.0.0.0"}
    assert env["VLLM_HOST_IP"].overrides is None


def test_e6_env_beats_env_from_and_later_source_wins() -> None:
    env = build(
        [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
        [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "b"}}],
        configmaps={"a": cm({"VLLM_LOGGING_LEVEL": "INFO", "VLLM_HOST_IP": "10.0.0.1"})},
        secrets={"b": secret({"VLLM_LOGGING_LEVEL": "WARNING", "VLLM_HOST_IP": "10.0.0.2"})},
    )
    assert values(env) == BASE | {"VLLM_LOGGING_LEVEL": "DEBUG", "VLLM_HOST_IP": "10.0.0.2"}
    assert [v.value for v in env["VLLM_LOGGING_LEVEL"].history()] == ["DEBUG", "WARNING", "INFO"]
    assert env["VLLM_LOGGING_LEVEL"].overridden_link is None
    assert env["VLLM_HOST_IP"].sensitive
    assert not env["VLLM_LOGGING_LEVEL"].sensitive


def test_e7_missing_optional_key_ref_keeps_service_link() -> None:
    ref = {"name": "missing", "key": "port", "optional": True}
    env = build([{"name": "VLLM_PORT", "valueFrom": {"configMapKeyRef": ref}}])
    assert values(env) == BASE
    assert env["VLLM_PORT"].source is Source.SERVICE_LINK


@pytest.mark.parametrize("optional", [None, False])
def test_e8_missing_required_key_ref_is_an_error(optional: bool | None) -> None:
    ref: dict[str, Any] = {"name": "missing", "key": "port"}
    if optional is not None:
        ref["optional"] = optional
    entry = {"name": "VLLM_PORT", "valueFrom": {"configMapKeyRef": ref}}
    env = build([entry])
    [error] = env.errors
    assert error.message == 'configmap "missing" not found'
    assert error.origin == "env[0]: ConfigMap missing key port"
    assert error.entry is entry


def test_e9_missing_env_from_source() -> None:
    env = build(env_from=[{"configMapRef": {"name": "missing"}}])
    [error] = env.errors
    assert (error.message, error.origin) == (
        'configmap "missing" not found',
        "envFrom[0]: ConfigMap missing",
    )
    assert values(build(env_from=[{"configMapRef": {"name": "missing", "optional": True}}])) == BASE


def test_e10_value_from_is_never_expanded() -> None:
    env = build(
        [
            {"name": "FOO", "value": "bar"},
            {"name": "VLLM_HOST_IP", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "ip"}}},
        ],
        configmaps={"cm": cm({"ip": "$(FOO)"})},
    )
    assert values(env) == BASE | {"FOO": "bar", "VLLM_HOST_IP": "$(FOO)"}
    assert env["VLLM_HOST_IP"].origin == "env[1]: ConfigMap cm key ip"
    assert env["VLLM_HOST_IP"].source is Source.VALUE_FROM


def test_e11_forward_reference_stays_verbatim() -> None:
    env = build([{"name": "B", "value": "$(C)"}, {"name": "C", "value": "1"}])
    assert values(env) == BASE | {"B": "$(C)", "C": "1"}


def test_e12_forward_reference_resolves_through_env_from() -> None:
    env = build(
        [{"name": "B", "value": "$(C)"}, {"name": "C", "value": "1"}],
        [{"configMapRef": {"name": "cm"}}],
        configmaps={"cm": cm({"C": "cm"})},
    )
    assert values(env) == BASE | {"B": "cm", "C": "1"}


def test_e13_earlier_entry_and_service_link() -> None:
    env = build([{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(VLLM_SERVICE_PORT)"}])
    assert values(env) == BASE | {"A": "x", "B": "x-8000"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$$(VLLM_PORT)", "$(VLLM_PORT)"),
        ("$$$(VLLM_SERVICE_PORT)", "$8000"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$VLLM_PORT", "$VLLM_PORT"),
        ("${VLLM_PORT}", "${VLLM_PORT}"),
        ("http://$(VLLM_SERVICE_HOST):$(VLLM_SERVICE_PORT_HTTP)/v1", "http://10.96.0.12:8000/v1"),
    ],
)
def test_e14_expansion_in_values(value: str, expected: str) -> None:
    env = build([{"name": "X", "value": value}])
    assert values(env) == BASE | {"X": expected}
    assert env["X"].display == expected


def test_e15_args_use_the_final_environment() -> None:
    container = {
        "name": "c",
        "args": ["--port", "$(VLLM_PORT)", "--host=$(VLLM_SERVICE_HOST)", "$$(VLLM_PORT)"],
    }
    env = effective_environment(container, {"containers": [container]}, "llm", CLUSTER, {}, {})
    assert values(env) == BASE
    assert expanded_args(container, env) == [
        "--port",
        "tcp://10.96.0.12:8000",
        "--host=10.96.0.12",
        "$(VLLM_PORT)",
    ]


def test_e16_duplicates_last_wins_each_expanded_in_place() -> None:
    env = build(
        [
            {"name": "X", "value": "a"},
            {"name": "X", "value": "$(X)b"},
            {"name": "Y", "value": "a"},
            {"name": "Y", "value": "b"},
        ]
    )
    assert values(env) == BASE | {"X": "ab", "Y": "b"}
    assert env["X"].origin == "env[1]"
    assert env["X"].overrides.origin == "env[0]"
    assert env["Y"].overrides.value == "a"


def test_e17_env_from_keys_are_injected_as_is() -> None:
    env = build(
        env_from=[{"prefix": "p_", "secretRef": {"name": "s"}}],
        secrets={"s": secret({"1234.name": "abc", "vllm-port": "1"})},
    )
    assert values(env) == BASE | {"p_1234.name": "abc", "p_vllm-port": "1"}
    unprefixed = build(
        env_from=[{"secretRef": {"name": "s"}}], secrets={"s": secret({"1234": "abc"})}
    )
    assert values(unprefixed) == BASE | {"1234": "abc"}


def test_e18_links_off() -> None:
    env = build([{"name": "VLLM_PORT", "value": "8000"}], links=False)
    assert values(env) == K8S | {"VLLM_PORT": "8000"}
    assert env["VLLM_PORT"].overrides is None


def test_e19_field_ref_with_known_pod_fields() -> None:
    env = build(
        [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "N", "value": "x-$(POD_NAME)"},
        ],
        pod_fields={"metadata.name": "p1"},
    )
    assert values(env) == BASE | {"POD_NAME": "p1", "N": "x-p1"}


def test_e20_name_without_value() -> None:
    env = build([{"name": "VLLM_PORT"}])
    assert values(env) == BASE | {"VLLM_PORT": ""}
    assert env["VLLM_PORT"].overrides.source is Source.SERVICE_LINK


# --- S-vectors through the whole algorithm --------------------------------------------------


def test_s15_links_off_through_environment() -> None:
    assert values(build(links=False)) == K8S


def test_s17_ambiguous_service_link_and_a_reference_to_it() -> None:
    other = svc("vllm-service", "10.96.0.30", [{"port": 9000}])
    env = build(
        [{"name": "P", "value": "port=$(VLLM_SERVICE_PORT)"}], services=[MASTER, CLUSTER[1], other]
    )
    var = env["VLLM_SERVICE_PORT"]
    assert var.value is None
    assert var.candidates == ("8000", "tcp://10.96.0.30:9000")
    assert var.origin == "Service llm/vllm or Service llm/vllm-service"
    assert [link.ref for link in var.links] == ["llm/vllm", "llm/vllm-service"]
    assert env["P"].value is None
    assert env["P"].candidates == ("port=8000", "port=tcp://10.96.0.30:9000")
    assert env["P"].display == "port=$(VLLM_SERVICE_PORT)"
    assert env["VLLM_SERVICE_SERVICE_HOST"].value == "10.96.0.30"


# --- errors ---------------------------------------------------------------------------------


def test_missing_key_in_known_objects() -> None:
    env = build(
        [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope"}}},
            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}},
            {
                "name": "D",
                "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope", "optional": True}},
            },
        ],
        [{"secretRef": {"name": "gone-too"}}],
        configmaps={"cm": cm({"k": "v"})},
        secrets={"s": secret({"k": "v"})},
    )
    assert [e.message for e in env.errors] == [
        'secret "gone-too" not found',
        "couldn't find key nope in ConfigMap llm/cm",
        "couldn't find key nope in Secret llm/s",
        'secret "gone" not found',
    ]
    assert not {"A", "B", "C", "D"} & set(env)


# --- what cannot be known -------------------------------------------------------------------


def build_unknown(env: Any = None, env_from: Any = None, **kwargs: Any) -> Environment:
    container = {"name": "c", "env": env or [], "envFrom": env_from or []}
    return effective_environment(container, {}, "llm", CLUSTER, None, None, **kwargs)


def test_unknown_required_key_ref() -> None:
    env = build_unknown(
        [{"name": "VLLM_PORT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "port"}}}]
    )
    var = env["VLLM_PORT"]
    assert (var.value, var.candidates, var.maybe_absent, var.may_be_unset) == (
        None,
        (None,),
        False,
        False,
    )
    assert var.display == "<ConfigMap cm key port>"
    assert var.overrides.source is Source.SERVICE_LINK
    assert not env.errors


def test_unknown_optional_key_ref_may_leave_the_service_link() -> None:
    ref = {"name": "cm", "key": "port", "optional": True}
    env = build_unknown([{"name": "VLLM_PORT", "valueFrom": {"configMapKeyRef": ref}}])
    var = env["VLLM_PORT"]
    assert var.maybe_absent and not var.may_be_unset
    assert var.value is None
    assert var.candidates == (None, "tcp://10.96.0.12:8000")
    # Nothing underneath: the variable itself may be unset.
    alone = build_unknown([{"name": "X", "valueFrom": {"secretKeyRef": {**ref, "name": "s"}}}])["X"]
    assert alone.may_be_unset and alone.candidates == (None,) and alone.sensitive


def test_reference_to_unknown_makes_the_value_unknown() -> None:
    env = build_unknown(
        [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "URL", "value": "http://$(POD):$(VLLM_SERVICE_PORT)"},
        ]
    )
    assert env["POD"].value is None
    assert env["POD"].display == "<fieldRef metadata.name>"
    assert env["URL"].value is None
    assert env["URL"].display == "http://$(POD):8000"


def test_maybe_unset_reference_gives_both_expansions() -> None:
    env = build_unknown(
        [
            {
                "name": "A",
                "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": True}},
            },
            {"name": "B", "value": "<$(A)>"},
        ]
    )
    assert env["B"].candidates == (None, "<$(A)>")


@pytest.mark.parametrize(
    ("value_from", "display", "maybe_absent"),
    [
        ({"resourceFieldRef": {"resource": "limits.cpu"}}, "<resourceFieldRef limits.cpu>", False),
        (
            {"fileKeyRef": {"volumeName": "v", "path": "a.env", "key": "K"}},
            "<fileKeyRef v/a.env key K>",
            False,
        ),
        (
            {"fileKeyRef": {"volumeName": "v", "path": "a.env", "key": "K", "optional": True}},
            "<fileKeyRef v/a.env key K>",
            True,
        ),
        ({"fieldRef": {"fieldPath": "status.podIP"}}, "<fieldRef status.podIP>", False),
    ],
)
def test_value_from_unknowable(value_from: dict, display: str, maybe_absent: bool) -> None:
    var = build([{"name": "X", "valueFrom": value_from}], pod_fields={"metadata.name": "p"})["X"]
    assert (var.value, var.display, var.maybe_absent) == (None, display, maybe_absent)
    assert var.source is Source.VALUE_FROM


def test_opaque_env_from_may_define_anything() -> None:
    env = build_unknown(
        [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}, {"name": "Y", "value": "$(VLLM_USE_V1)"}],
        [{"configMapRef": {"name": "cm"}}],
    )
    assert not env.complete
    [source] = env.opaque
    assert source.origin == "envFrom[0]: ConfigMap cm, not available"
    # A service link the ConfigMap may override.
    port = env["VLLM_PORT"]
    assert (port.source, port.maybe_absent, port.candidates) == (
        Source.ENV_FROM,
        True,
        (None, "tcp://10.96.0.12:8000"),
    )
    # A later env entry wins for sure.
    assert env["VLLM_LOGGING_LEVEL"].value == "INFO"
    assert env["VLLM_LOGGING_LEVEL"].overrides.maybe_absent
    # Any other name may or may not be set, so references to it are unknown.
    anything = env["VLLM_USE_V1"]
    assert anything.may_be_unset and anything.value is None
    assert "VLLM_USE_V1" in env and "VLLM_USE_V1" not in list(env)
    assert env["Y"].candidates == (None, "$(VLLM_USE_V1)")


def test_opaque_env_from_prefix_and_later_known_source() -> None:
    env = build(
        env_from=[
            {"prefix": "APP_", "secretRef": {"name": "unknown"}},
            {"configMapRef": {"name": "cm"}},
        ],
        configmaps={"cm": cm({"APP_X": "1"})},
        secrets={"unknown": None},  # known to exist, contents not given
    )
    assert env["VLLM_PORT"].source is Source.SERVICE_LINK  # the prefix does not cover it
    assert env.get("OTHER") is None
    assert env["APP_Y"].may_be_unset and env["APP_Y"].sensitive
    assert env["APP_X"].value == "1"  # the later source overwrites whatever came before
    assert env["APP_X"].overrides.maybe_absent


def test_secret_data_decoding() -> None:
    s = {
        "data": {"A": b64("a"), "B": "!!not base64!!", "C": b64("c")},
        "stringData": {"C": "plain", "D": "d"},
    }
    env = build(env_from=[{"secretRef": {"name": "s"}}], secrets={"s": s})
    assert {k: env[k].value for k in "ABCD"} == {"A": "a", "B": None, "C": "plain", "D": "d"}
    assert all(env[k].sensitive for k in "ABCD")
    assert env["B"].display == "<Secret s key B>"


def test_sensitivity_follows_references() -> None:
    env = build(
        [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
            {"name": "AUTH", "value": "Bearer $(TOKEN)"},
            {"name": "PLAIN", "value": "$(VLLM_PORT)"},
        ],
        secrets={"s": secret({"t": "xyz"})},
    )
    assert env["AUTH"].value == "Bearer xyz"
    assert env["TOKEN"].sensitive and env["AUTH"].sensitive and not env["PLAIN"].sensitive


def test_command_and_args_keep_unknown_references() -> None:
    container = {
        "name": "c",
        "command": ["vllm", "serve", "$(MODEL)", 42],
        "args": ["--port=$(P)", "$(VLLM_SERVICE_PORT)", "$(NOPE)"],
        "env": [{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "envFrom": [{"prefix": "MO", "configMapRef": {"name": "cm"}}],
    }
    env = effective_environment(container, {}, "llm", CLUSTER, None, None)
    assert expanded_command(container, env) == ["vllm", "serve", "$(MODEL)"]
    assert expanded_args(container, env) == ["--port=$(P)", "8000", "$(NOPE)"]
    assert expanded_args({"args": "x"}, env) == []
    assert expanded_command({}, env) == []


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "env_from"),
    [
        ("x", None),
        (None, "x"),
        ([None, "x", 1, [], {}], [None, "x", {}, {"configMapRef": "cm"}, {"prefix": 1}]),
        ([{"value": "no name"}, {"name": 3, "value": "x"}, {"name": "", "value": "x"}], None),
    ],
)
def test_malformed_entries_are_skipped(env: Any, env_from: Any) -> None:
    assert values(build(env, env_from)) == BASE


def test_malformed_values() -> None:
    env = build(
        [
            {"name": "INT", "value": 8000},
            {"name": "NULL", "value": None},
            {"name": "EMPTY_FROM", "valueFrom": {}},
            {"name": "BAD_FROM", "valueFrom": "cm"},
            {"name": "NO_REF", "valueFrom": {"configMapKeyRef": None}},
        ],
        [{"configMapRef": {"name": "cm"}, "prefix": None}],
        configmaps={"cm": cm({"N": 1, "S": "s"})},
    )
    assert env["INT"].value is None and env["INT"].display == "8000"
    assert values(env) == BASE | {
        "INT": None,
        "NULL": "",
        "EMPTY_FROM": "",
        "BAD_FROM": "",
        "NO_REF": "",
        "N": None,
        "S": "s",
    }


@pytest.mark.parametrize("container", [None, "x", {}, {"env": None, "envFrom": None}])
def test_malformed_container_and_spec(container: Any) -> None:
    env = effective_environment(container, None, "llm", CLUSTER, None, None)  # type: ignore[arg-type]
    assert values(env) == BASE
    assert expanded_args(container, env) == []  # type: ignore[arg-type]


def test_environment_mapping_protocol() -> None:
    env = build([{"name": "A", "value": "1"}])
    assert "A" in env and "VLLM_PORT" in env and "NOPE" not in env and 3 not in env
    assert len(env) == len(BASE) + 1
    assert next(iter(env)) == "A"
    assert env.get("NOPE") is None
    with pytest.raises(KeyError):
        env["NOPE"]
    assert env.lookup("A") == "1" and env.lookup("NOPE") is None


def test_a_literal_credential_is_sensitive_through_references_and_built_as_when_defined() -> None:
    """A short literal is built only when looked up (Environment.defer): its taint still reaches
    what expands it, and it overrides what stood before it, not what came after."""
    from webhook.detect import is_credential

    env = build_unknown(
        [
            {"name": "HF_TOKEN", "value": "hf_abc"},
            {"name": "AUTH", "value": "Bearer $(HF_TOKEN)"},
            {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"},
        ],
        [{"configMapRef": {"name": "unseen", "optional": True}}],
        sensitive_name=is_credential,
    )
    assert env["AUTH"].value == "Bearer hf_abc" and env["AUTH"].sensitive and env["HF_TOKEN"].sensitive
    level = env["VLLM_LOGGING_LEVEL"]
    assert level.value == "INFO" and not level.sensitive and level.origin == "env[2]"
    assert level.overrides is not None and level.overrides.maybe_absent  # the envFrom before it
    assert [v.source for v in level.history()] == [Source.ENV, Source.ENV_FROM]
