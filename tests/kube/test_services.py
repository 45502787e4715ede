"""Service links: FromServices and getServiceEnvVarMap, vectors S1-S18 of the research doc."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.kube.services import (
    ServiceLinkEnv,
    is_service_ip_set,
    kubernetes_service,
    make_env_variable_name,
    service_env,
    service_link_env,
    services_that_produce,
)


def svc(name: str, cluster_ip: str | None, ports: Any, namespace: str = "llm", **spec: Any) -> dict:
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"ports": ports, **spec},
    }


MASTER = svc(
    "kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}], "default"
)
VLLM = svc("vllm", "10.96.0.12", [{"name": "http", "port": 8000, "protocol": "TCP"}])
CLUSTER = [MASTER, VLLM]

K8S = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}
VSVC = {
    "VLLM_SERVICE_HOST": "10.96.0.12",
    "VLLM_SERVICE_PORT": "8000",
    "VLLM_SERVICE_PORT_HTTP": "8000",
    "VLLM_PORT": "tcp://10.96.0.12:8000",
    "VLLM_PORT_8000_TCP": "tcp://10.96.0.12:8000",
    "VLLM_PORT_8000_TCP_PROTO": "tcp",
    "VLLM_PORT_8000_TCP_PORT": "8000",
    "VLLM_PORT_8000_TCP_ADDR": "10.96.0.12",
}


def pod_env(services: list[dict], namespace: str = "llm", links: bool = True) -> dict[str, str]:
    env = service_link_env(services, namespace, links)
    assert not env.ambiguous()
    return env.flat()


# --- 7.1 FromServices -----------------------------------------------------------------------


def test_s1_named_port() -> None:
    env = service_env(VLLM)
    assert env == VSVC
    assert list(env) == list(VSVC)  # the kubelet's emission order


def test_s2_unnamed_port_without_protocol() -> None:
    expected = {k: v for k, v in VSVC.items() if k != "VLLM_SERVICE_PORT_HTTP"}
    assert service_env(svc("vllm", "10.96.0.12", [{"port": 8000}])) == expected


def test_s3_three_ports() -> None:
    service = svc(
        "vllm",
        "10.96.0.12",
        [
            {"name": "http", "port": 8000, "protocol": "TCP"},
            {"name": "metrics", "port": 8080},
            {"name": "zmq-udp", "port": 5557, "protocol": "UDP"},
        ],
    )
    expected = {
        "VLLM_SERVICE_HOST": "10.96.0.12",
        "VLLM_SERVICE_PORT": "8000",
        "VLLM_SERVICE_PORT_HTTP": "8000",
        "VLLM_SERVICE_PORT_METRICS": "8080",
        "VLLM_SERVICE_PORT_ZMQ_UDP": "5557",
        "VLLM_PORT": "tcp://10.96.0.12:8000",
        "VLLM_PORT_8000_TCP": "tcp://10.96.0.12:8000",
        "VLLM_PORT_8000_TCP_PROTO": "tcp",
        "VLLM_PORT_8000_TCP_PORT": "8000",
        "VLLM_PORT_8000_TCP_ADDR": "10.96.0.12",
        "VLLM_PORT_8080_TCP": "tcp://10.96.0.12:8080",
        "VLLM_PORT_8080_TCP_PROTO": "tcp",
        "VLLM_PORT_8080_TCP_PORT": "8080",
        "VLLM_PORT_8080_TCP_ADDR": "10.96.0.12",
        "VLLM_PORT_5557_UDP": "udp://10.96.0.12:5557",
        "VLLM_PORT_5557_UDP_PROTO": "udp",
        "VLLM_PORT_5557_UDP_PORT": "5557",
        "VLLM_PORT_5557_UDP_ADDR": "10.96.0.12",
    }
    env = service_env(service)
    assert env == expected
    assert list(env) == list(expected)
    assert len(env) == 18


def test_s4_dp_master() -> None:
    service = svc(
        "vllm-dp-master", "10.96.0.20", [{"name": "dp", "port": 13345, "protocol": "TCP"}]
    )
    assert service_env(service) == {
        "VLLM_DP_MASTER_SERVICE_HOST": "10.96.0.20",
        "VLLM_DP_MASTER_SERVICE_PORT": "13345",
        "VLLM_DP_MASTER_SERVICE_PORT_DP": "13345",
        "VLLM_DP_MASTER_PORT": "tcp://10.96.0.20:13345",
        "VLLM_DP_MASTER_PORT_13345_TCP": "tcp://10.96.0.20:13345",
        "VLLM_DP_MASTER_PORT_13345_TCP_PROTO": "tcp",
        "VLLM_DP_MASTER_PORT_13345_TCP_PORT": "13345",
        "VLLM_DP_MASTER_PORT_13345_TCP_ADDR": "10.96.0.20",
    }


def test_s5_headless() -> None:
    headless = svc("vllm", "None", [{"name": "http", "port": 8000}])
    assert service_env(headless) == {}
    assert service_env(headless, assumed_cluster_ip="10.96.0.12") == {}
    assert pod_env([MASTER, headless]) == K8S


def test_s6_external_name() -> None:
    external = svc("vllm", None, [{"port": 8000}], type="ExternalName", externalName="x.example")
    assert service_env(external) == {}
    assert service_env(external, assumed_cluster_ip="10.96.0.12") == {}
    assert pod_env([MASTER, external]) == K8S


def test_s7_ipv6() -> None:
    assert service_env(svc("vllm", "fd00:10:96::c", [{"port": 8000}])) == {
        "VLLM_SERVICE_HOST": "fd00:10:96::c",
        "VLLM_SERVICE_PORT": "8000",
        "VLLM_PORT": "tcp://[fd00:10:96::c]:8000",
        "VLLM_PORT_8000_TCP": "tcp://[fd00:10:96::c]:8000",
        "VLLM_PORT_8000_TCP_PROTO": "tcp",
        "VLLM_PORT_8000_TCP_PORT": "8000",
        "VLLM_PORT_8000_TCP_ADDR": "fd00:10:96::c",
    }


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_s8_service_port_not_target_or_node_port(service_type: str) -> None:
    ports = [{"name": "http", "port": 80, "targetPort": 8000, "nodePort": 30080}]
    assert service_env(svc("vllm", "10.96.0.12", ports, type=service_type)) == {
        "VLLM_SERVICE_HOST": "10.96.0.12",
        "VLLM_SERVICE_PORT": "80",
        "VLLM_SERVICE_PORT_HTTP": "80",
        "VLLM_PORT": "tcp://10.96.0.12:80",
        "VLLM_PORT_80_TCP": "tcp://10.96.0.12:80",
        "VLLM_PORT_80_TCP_PROTO": "tcp",
        "VLLM_PORT_80_TCP_PORT": "80",
        "VLLM_PORT_80_TCP_ADDR": "10.96.0.12",
    }


def test_s9_first_port_is_the_primary_one() -> None:
    ports = [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8000}]
    assert service_env(svc("vllm", "10.96.0.12", ports)) == {
        "VLLM_SERVICE_HOST": "10.96.0.12",
        "VLLM_SERVICE_PORT": "9090",
        "VLLM_SERVICE_PORT_METRICS": "9090",
        "VLLM_SERVICE_PORT_HTTP": "8000",
        "VLLM_PORT": "tcp://10.96.0.12:9090",
        "VLLM_PORT_9090_TCP": "tcp://10.96.0.12:9090",
        "VLLM_PORT_9090_TCP_PROTO": "tcp",
        "VLLM_PORT_9090_TCP_PORT": "9090",
        "VLLM_PORT_9090_TCP_ADDR": "10.96.0.12",
        "VLLM_PORT_8000_TCP": "tcp://10.96.0.12:8000",
        "VLLM_PORT_8000_TCP_PROTO": "tcp",
        "VLLM_PORT_8000_TCP_PORT": "8000",
        "VLLM_PORT_8000_TCP_ADDR": "10.96.0.12",
    }


def test_s10_sctp() -> None:
    ports = [{"name": "sctp-x", "port": 7000, "protocol": "SCTP"}]
    assert service_env(svc("vllm", "10.96.0.12", ports)) == {
        "VLLM_SERVICE_HOST": "10.96.0.12",
        "VLLM_SERVICE_PORT": "7000",
        "VLLM_SERVICE_PORT_SCTP_X": "7000",
        "VLLM_PORT": "sctp://10.96.0.12:7000",
        "VLLM_PORT_7000_SCTP": "sctp://10.96.0.12:7000",
        "VLLM_PORT_7000_SCTP_PROTO": "sctp",
        "VLLM_PORT_7000_SCTP_PORT": "7000",
        "VLLM_PORT_7000_SCTP_ADDR": "10.96.0.12",
    }


def test_s11_digit_after_dash() -> None:
    assert service_env(svc("vllm-0", "10.96.0.40", [{"name": "grpc-api", "port": 50051}])) == {
        "VLLM_0_SERVICE_HOST": "10.96.0.40",
        "VLLM_0_SERVICE_PORT": "50051",
        "VLLM_0_SERVICE_PORT_GRPC_API": "50051",
        "VLLM_0_PORT": "tcp://10.96.0.40:50051",
        "VLLM_0_PORT_50051_TCP": "tcp://10.96.0.40:50051",
        "VLLM_0_PORT_50051_TCP_PROTO": "tcp",
        "VLLM_0_PORT_50051_TCP_PORT": "50051",
        "VLLM_0_PORT_50051_TCP_ADDR": "10.96.0.40",
    }


def test_s12_no_dash_no_vllm_prefix() -> None:
    assert service_env(svc("vllmserver", "10.96.0.41", [{"port": 8000}])) == {
        "VLLMSERVER_SERVICE_HOST": "10.96.0.41",
        "VLLMSERVER_SERVICE_PORT": "8000",
        "VLLMSERVER_PORT": "tcp://10.96.0.41:8000",
        "VLLMSERVER_PORT_8000_TCP": "tcp://10.96.0.41:8000",
        "VLLMSERVER_PORT_8000_TCP_PROTO": "tcp",
        "VLLMSERVER_PORT_8000_TCP_PORT": "8000",
        "VLLMSERVER_PORT_8000_TCP_ADDR": "10.96.0.41",
    }


def test_s13_kserve_predictor_service() -> None:
    assert service_env(svc("vllm-predictor", "10.96.0.42", [{"name": "http", "port": 80}])) == {
        "VLLM_PREDICTOR_SERVICE_HOST": "10.96.0.42",
        "VLLM_PREDICTOR_SERVICE_PORT": "80",
        "VLLM_PREDICTOR_SERVICE_PORT_HTTP": "80",
        "VLLM_PREDICTOR_PORT": "tcp://10.96.0.42:80",
        "VLLM_PREDICTOR_PORT_80_TCP": "tcp://10.96.0.42:80",
        "VLLM_PREDICTOR_PORT_80_TCP_PROTO": "tcp",
        "VLLM_PREDICTOR_PORT_80_TCP_PORT": "80",
        "VLLM_PREDICTOR_PORT_80_TCP_ADDR": "10.96.0.42",
    }


# --- 7.1 getServiceEnvVarMap: complete environments of a pod --------------------------------


def test_fixture_cluster() -> None:
    assert pod_env(CLUSTER) == K8S | VSVC


def test_s14_other_namespace_never_counts() -> None:
    other = svc("vllm", "10.96.0.12", [{"name": "http", "port": 8000}], namespace="other")
    assert pod_env([MASTER, other]) == K8S


def test_s15_links_off_keeps_master_service() -> None:
    assert pod_env(CLUSTER, links=False) == K8S


@pytest.mark.parametrize("order", [1, -1])
def test_s16a_pod_namespace_kubernetes_wins_in_any_order(order: int) -> None:
    local = svc("kubernetes", "10.96.5.5", [{"name": "https", "port": 8443}])
    env = service_link_env([MASTER, local, VLLM][::order], "llm", True)
    assert env.flat() == VSVC | {
        "KUBERNETES_SERVICE_HOST": "10.96.5.5",
        "KUBERNETES_SERVICE_PORT": "8443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "8443",
        "KUBERNETES_PORT": "tcp://10.96.5.5:8443",
        "KUBERNETES_PORT_8443_TCP": "tcp://10.96.5.5:8443",
        "KUBERNETES_PORT_8443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_8443_TCP_PORT": "8443",
        "KUBERNETES_PORT_8443_TCP_ADDR": "10.96.5.5",
    }
    assert {value.ref for values in env.values() for value in values} == {
        "llm/kubernetes",
        "llm/vllm",
    }


@pytest.mark.parametrize("order", [1, -1])
def test_s16b_links_off_uses_default_kubernetes(order: int) -> None:
    local = svc("kubernetes", "10.96.5.5", [{"name": "https", "port": 8443}])
    assert pod_env([MASTER, local, VLLM][::order], links=False) == K8S


def test_s17_two_services_one_name_keeps_both_candidates() -> None:
    other = svc("vllm-service", "10.96.0.30", [{"port": 9000}])
    env = service_link_env([MASTER, VLLM, other], "llm", True)
    assert set(env) == set(K8S) | set(VSVC) | {
        "VLLM_SERVICE_SERVICE_HOST",
        "VLLM_SERVICE_SERVICE_PORT",
        "VLLM_SERVICE_PORT_9000_TCP",
        "VLLM_SERVICE_PORT_9000_TCP_PROTO",
        "VLLM_SERVICE_PORT_9000_TCP_PORT",
        "VLLM_SERVICE_PORT_9000_TCP_ADDR",
    }
    candidates = {name: [(v.value, v.ref) for v in values] for name, values in env.items()}
    assert candidates["VLLM_SERVICE_PORT"] == [
        ("8000", "llm/vllm"),
        ("tcp://10.96.0.30:9000", "llm/vllm-service"),
    ]
    assert list(env.ambiguous()) == ["VLLM_SERVICE_PORT"]
    flat = env.flat()
    assert flat == K8S | VSVC | {
        "VLLM_SERVICE_SERVICE_HOST": "10.96.0.30",
        "VLLM_SERVICE_SERVICE_PORT": "9000",
        "VLLM_SERVICE_PORT_9000_TCP": "tcp://10.96.0.30:9000",
        "VLLM_SERVICE_PORT_9000_TCP_PROTO": "tcp",
        "VLLM_SERVICE_PORT_9000_TCP_PORT": "9000",
        "VLLM_SERVICE_PORT_9000_TCP_ADDR": "10.96.0.30",
    }
    # The other order puts the other candidate first: the kubelet's pick is not defined.
    assert service_link_env([other, VLLM, MASTER], "llm", True).flat()["VLLM_SERVICE_PORT"] == (
        "tcp://10.96.0.30:9000"
    )


def test_s18_pod_in_default_namespace() -> None:
    default_vllm = svc("vllm", "10.96.0.12", [{"name": "http", "port": 8000}], namespace="default")
    assert pod_env([MASTER, default_vllm], namespace="default") == K8S | VSVC
    assert pod_env([MASTER, default_vllm], namespace="default", links=False) == K8S


# --- details ---------------------------------------------------------------------------------


def test_service_without_namespace_is_in_the_pods_namespace() -> None:
    bare = {
        "metadata": {"name": "vllm"},
        "spec": {"clusterIP": "10.96.0.12", "ports": [{"port": 1}]},
    }
    assert "VLLM_PORT" in service_link_env([bare], "llm", True)
    assert service_link_env([bare], "llm", False) == {}


def test_assumed_cluster_ip_for_unapplied_manifests() -> None:
    unapplied = svc("vllm", None, [{"name": "http", "port": 8000}])
    assert service_env(unapplied) == {}
    assert service_env(unapplied, assumed_cluster_ip="10.96.0.12") == VSVC
    assert service_env(svc("vllm", "", [{"name": "http", "port": 8000}]), "10.96.0.12") == VSVC
    assert service_link_env([unapplied], "llm", True, "10.96.0.12").flat() == VSVC
    # A real clusterIP always wins over the placeholder.
    assert service_env(VLLM, assumed_cluster_ip="10.1.1.1") == VSVC


def test_link_values_carry_their_service() -> None:
    env = service_link_env(CLUSTER, "llm", True)
    assert isinstance(env, ServiceLinkEnv)
    (value,) = env["VLLM_PORT"]
    assert value.service is VLLM
    assert (value.namespace, value.name, value.ref) == ("llm", "vllm", "llm/vllm")


@pytest.mark.parametrize(
    "service",
    [
        None,
        "vllm",
        {},
        {"metadata": {"name": "vllm"}},
        {"metadata": "x", "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 1}]}},
        svc("vllm", "10.96.0.12", None),
        svc("vllm", "10.96.0.12", []),
        svc("vllm", "10.96.0.12", "8000"),
        svc("vllm", "10.96.0.12", [{"port": "8000"}, {"port": True}, "x"]),
        svc("vllm", 42, [{"port": 8000}]),
    ],
)
def test_malformed_services_give_nothing(service: Any) -> None:
    assert service_env(service) == {}
    assert service_link_env([service], "llm", True) == {}


def test_malformed_ports_are_skipped() -> None:
    service = svc("vllm", "10.96.0.12", ["x", {"port": "80"}, {"name": "http", "port": 8000}])
    assert service_env(service) == VSVC


def test_is_service_ip_set() -> None:
    assert is_service_ip_set(VLLM)
    assert is_service_ip_set(svc("x", "fd00::1", []))
    assert not is_service_ip_set(svc("x", "None", []))
    assert not is_service_ip_set(svc("x", "", []))
    assert not is_service_ip_set(svc("x", None, []))
    assert not is_service_ip_set({"spec": None})


def test_make_env_variable_name() -> None:
    assert make_env_variable_name("vllm-dp-master") == "VLLM_DP_MASTER"
    assert make_env_variable_name("a.b-c") == "A.B_C"  # only "-" is replaced
    assert make_env_variable_name("zmq-udp") == "ZMQ_UDP"


def test_kubernetes_service_stand_in() -> None:
    assert service_env(kubernetes_service()) == K8S


@pytest.mark.parametrize(
    ("variable", "services"),
    [
        ("VLLM_PORT", ["vllm"]),
        ("VLLM_DP_MASTER_PORT", ["vllm-dp-master"]),
        ("VLLM_SERVICE_PORT", ["vllm", "vllm-service"]),
        ("VLLM_SERVICE_HOST", ["vllm"]),
        ("VLLM_SERVICE_PORT_HTTP", ["vllm"]),
        ("VLLM_PORT_8000_TCP", ["vllm"]),
        ("VLLM_PORT_8000_TCP_ADDR", ["vllm"]),
        ("VLLM_PORT_5557_UDP_PROTO", ["vllm"]),
        ("VLLM_PORT_7000_SCTP_PORT", ["vllm", "vllm-port-7000-sctp"]),
        ("VLLM_RPC_BASE_PORT", ["vllm-rpc-base"]),
        ("VLLM_HOST_IP", []),
        ("VLLM_USE_V1", []),
        ("VLLM_PORT_8000_HTTP", []),  # not a protocol
        ("VLLM_PORT_0_TCP", []),  # port 0 does not exist
        ("VLLM_PORT_65536_TCP", []),
        ("VLLM_PORT_08000_TCP", []),  # Itoa never writes a leading zero
        ("VLLM_SERVICE_PORT_A_B", ["vllm"]),
        ("VLLM_SERVICE_PORT_123", []),  # a port name needs a letter
        ("VLLM_SERVICE_PORT_ABCDEFGHIJKLMNOP", []),  # port names are <= 15 characters
        ("VLLM_SERVICE_PORT__X", []),
        ("vllm_PORT", []),
        ("_PORT", []),
        ("0VLLM_PORT", []),
        ("VLLM__X_PORT", ["vllm--x"]),  # "--" is fine in a DNS-1035 label
        ("VLLM_X__PORT", []),  # a label cannot end with "-"
        ("A" * 63 + "_PORT", ["a" * 63]),
        ("A" * 64 + "_PORT", []),
        ("", []),
    ],
)
def test_services_that_produce(variable: str, services: list[str]) -> None:
    assert services_that_produce(variable) == services


@pytest.mark.parametrize(
    "service",
    [
        svc(
            "vllm",
            "10.96.0.12",
            [{"name": "http", "port": 8000}, {"name": "zmq-udp", "port": 5557, "protocol": "UDP"}],
        ),
        svc("vllm-dp-master", "10.96.0.20", [{"name": "dp", "port": 13345}]),
        svc("a-b-c-9", "10.96.0.9", [{"port": 65535, "protocol": "SCTP"}]),
    ],
)
def test_services_that_produce_inverts_service_env(service: dict) -> None:
    name = service["metadata"]["name"]
    for variable in service_env(service):
        assert name in services_that_produce(variable), variable
