"""Namespace link tables kept one Service at a time agree with getServiceEnvVarMap from scratch."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from webhook.engine import link_matters
from webhook.kube import NamespaceLinks, Source, effective_environment, links_for
from webhook.kube.links import could_be_injected, everything
from webhook.kube.services import MASTER_NAMESPACE, service_env, service_link_env

from .test_services import MASTER, svc

NAMES = ["vllm", "vllm-service", "vllm-dp-master", "api", "kubernetes", "db", "vllm-router", "my-svc"]


def random_service(rng: random.Random, namespace: str) -> dict[str, Any]:
    ports = [{"name": rng.choice(["", "http", "grpc", "metrics"]), "port": rng.choice([80, 8000, 5557]),
              "protocol": rng.choice(["TCP", "UDP"])} for _ in range(rng.randint(1, 2))]
    for port in ports:
        if not port["name"]:
            del port["name"]
    ip = rng.choice(["10.96.0.12", "10.96.7.7", "None", None, "fd00::12"])
    return svc(rng.choice(NAMES), ip, ports, namespace)


def flat(links: Any, names: list[str]) -> dict[str, tuple[str, ...]]:
    return {n: tuple(v.value for v in links.values(n)) for n in names if links.values(n)}


@pytest.mark.parametrize("indexed", [everything, lambda name: False, link_matters])
def test_a_table_updated_event_by_event_equals_the_kubelets_map_built_from_scratch(
        indexed: Callable[[str], bool]) -> None:
    rng = random.Random(8)
    for _ in range(300):
        tables = {ns: NamespaceLinks(ns, indexed) for ns in ("llm", MASTER_NAMESPACE)}
        live: dict[tuple[str, str], dict[str, Any]] = {("default", "kubernetes"): MASTER}
        tables[MASTER_NAMESPACE].put(MASTER)
        for _ in range(rng.randint(1, 12)):
            namespace = rng.choice(["llm", "llm", MASTER_NAMESPACE])
            service = random_service(rng, namespace)
            key = (namespace, service["metadata"]["name"])
            if key in live and rng.random() < 0.4:
                del live[key]
                tables[namespace].remove(key[1])
            else:
                live[key] = service
                tables[namespace].put(service)
        enabled = rng.random() < 0.8
        expected = service_link_env(list(live.values()), "llm", enabled)
        links = links_for("llm", enabled, tables.get)
        every = sorted(set(expected) | set(links.names()))
        assert flat(links, every) == {n: tuple(v.value for v in values) for n, values in expected.items()}
        assert sorted(links.names()) == sorted(n for n in expected if indexed(n))


def test_names_outside_the_index_are_found_from_the_services_that_can_produce_them() -> None:
    table = NamespaceLinks("llm", link_matters)
    for name in ("vllm", "my-svc", *(f"svc-{i}" for i in range(1000))):
        table.put(svc(name, "10.96.0.5", [{"name": "http", "port": 8000, "protocol": "TCP"}]))
    assert "MY_SVC_SERVICE_HOST" not in table.names() and "VLLM_PORT" in table.names()
    assert len(table.names()) == len(service_env(svc("vllm", "10.96.0.5", [{"name": "http", "port": 8000}])))
    links = links_for("llm", True, {"llm": table}.get)
    container = {"name": "c", "env": [{"name": "VLLM_HOST_IP", "value": "$(MY_SVC_SERVICE_HOST)"},
                                      {"name": "X", "value": "$(SVC_999_PORT)"}]}
    env = effective_environment(container, {}, "llm", links, None, None)
    assert env.lookup("VLLM_HOST_IP") == "10.96.0.5"
    assert env.lookup("X") == "tcp://10.96.0.5:8000"


def test_a_change_bumps_the_version_and_drops_derived_results() -> None:
    table = NamespaceLinks("llm", link_matters)
    table.put(svc("vllm", "10.96.0.12", [{"port": 8000}]))
    first = table.derived("names", lambda: sorted(table.names()))
    assert table.derived("names", lambda: ["stale"]) == first
    table.put(svc("vllm", "None", [{"port": 8000}]))  # became headless: injects nothing
    assert table.derived("names", lambda: sorted(table.names())) == [] and "vllm" not in table
    table.remove("absent")
    assert table.version == 2


def test_opaque_env_from_is_one_layer_over_what_came_before_it() -> None:
    links = links_for("llm", True, {"llm": table_with(svc("vllm", "10.96.0.12", [{"port": 8000}]))}.get)
    container = {"name": "c", "env": [{"name": "VLLM_USE_V1", "value": "1"}],
                 "envFrom": [{"configMapRef": {"name": "unknown", "optional": True}}]}
    env = effective_environment(container, {}, "llm", links, None, None)
    # envFrom comes before env: the literal wins; the service link may be replaced by the ConfigMap
    assert env["VLLM_USE_V1"].value == "1"
    assert env["VLLM_PORT"].candidates == (None, "tcp://10.96.0.12:8000")
    assert env["ANYTHING"].may_be_unset and env["VLLM_PORT"].source is Source.ENV_FROM


def table_with(*services: dict[str, Any]) -> NamespaceLinks:
    table = NamespaceLinks("llm")
    for service in services:
        table.put(service)
    return table


def test_every_injected_name_passes_the_cheap_pre_filter() -> None:
    rng = random.Random(3)
    for i in range(2000):
        ports = [{"name": rng.choice(["", "http", "grpc-port", "portal", "x"]), "port": rng.randint(1, 65535),
                  "protocol": rng.choice(["TCP", "UDP", "SCTP"])} for _ in range(rng.randint(1, 3))]
        for port in ports:
            if not port["name"]:
                del port["name"]
        env = service_env(svc(f"{rng.choice(['a', 'vllm', 'x-y'])}-{i}", "10.0.0.1", ports))
        assert env and all(could_be_injected(name) for name in env)
    assert not could_be_injected("APP_SETTING_001") and not could_be_injected("VLLM_USE_V1")
