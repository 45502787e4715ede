"""The Services controllers create from a custom resource's name, and how they are judged."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from webhook.engine import Item, Settings, analyze
from webhook.frameworks import CATALOG, controller_services, created_by
from webhook.kube import service_env
from webhook.manifests import load_text


def load(text: str) -> dict[str, Any]:
    [document] = load_text(textwrap.dedent(text), "cr.yaml")
    assert document.obj is not None
    return dict(document.obj)


def made(text: str) -> list[tuple[str, str]]:
    """(name, kind of Service) for each Service the object's controller creates."""
    result = []
    for service in CATALOG.services(load(text)):
        spec = service["spec"]
        shape = ("ExternalName" if spec.get("type") == "ExternalName" else
                 "headless" if spec.get("clusterIP") == "None" else "ClusterIP")
        result.append((service["metadata"]["name"], shape))
    return result


RAY_SERVICE = """\
    apiVersion: ray.io/v1
    kind: RayService
    metadata: {name: vllm, namespace: llm}
    spec:
      rayClusterConfig:
        headGroupSpec: {template: {spec: {containers: [{name: head, image: rayproject/ray-llm:2.46.0}]}}}
    """


@pytest.mark.parametrize(("text", "services"), [
    (RAY_SERVICE, [("vllm-head-svc", "headless"), ("vllm-serve-svc", "ClusterIP")]),
    ("""\
     apiVersion: ray.io/v1
     kind: RayCluster
     metadata: {name: vllm}
     spec: {headGroupSpec: {serviceType: LoadBalancer}}
     """, [("vllm-head-svc", "ClusterIP")]),
    ("""\
     apiVersion: ray.io/v1
     kind: RayCluster
     metadata: {name: vllm, annotations: {ray.io/enable-serve-service: "true"}}
     spec: {headGroupSpec: {}}
     """, [("vllm-head-svc", "headless"), ("vllm-serve-svc", "ClusterIP")]),
    ("""\
     apiVersion: serving.kserve.io/v1beta1
     kind: InferenceService
     metadata: {name: vllm}
     spec: {predictor: {model: {modelFormat: {name: huggingface}}}, transformer: {containers: [{name: t}]}}
     """, [("vllm-predictor", "ClusterIP"), ("vllm-transformer", "ClusterIP")]),
    ("""\
     apiVersion: serving.kserve.io/v1beta1
     kind: InferenceService
     metadata: {name: vllm, annotations: {serving.kserve.io/deploymentMode: Serverless}}
     spec: {predictor: {model: {modelFormat: {name: huggingface}}}}
     """, [("vllm-predictor", "ExternalName"), ("vllm-predictor-00001", "ClusterIP"),
           ("vllm-predictor-00001-private", "ClusterIP")]),
    ("""\
     apiVersion: leaderworkerset.x-k8s.io/v1
     kind: LeaderWorkerSet
     metadata: {name: vllm}
     spec: {leaderWorkerTemplate: {size: 2}}
     """, [("vllm", "headless")]),
    ("""\
     apiVersion: production-stack.vllm.ai/v1alpha1
     kind: VLLMRuntime
     metadata: {name: vllm}
     spec: {vllmConfig: {v1: true}}
     """, [("vllm", "ClusterIP")]),
    ("""\
     apiVersion: production-stack.vllm.ai/v1alpha1
     kind: VLLMRouter
     metadata: {name: vllm-router}
     spec: {}
     """, [("vllm-router", "ClusterIP")]),
    ("""\
     apiVersion: inference.llmaz.io/v1alpha1
     kind: Playground
     metadata: {name: vllm}
     spec: {backendRuntimeConfig: {backendName: vllm}}
     """, [("vllm-lb", "ClusterIP"), ("vllm", "headless")]),
    ("""\
     apiVersion: serving.knative.dev/v1
     kind: Service
     metadata: {name: vllm}
     spec: {template: {spec: {containers: [{image: vllm/vllm-openai}]}}}
     """, [("vllm", "ExternalName"), ("vllm-00001", "ClusterIP"), ("vllm-00001-private", "ClusterIP")]),
    ("""\
     apiVersion: kubeai.org/v1
     kind: Model
     metadata: {name: vllm}
     spec: {engine: VLLM}
     """, []),
])
def test_services_each_controller_makes(text: str, services: list[tuple[str, str]]) -> None:
    assert made(text) == services


def test_modelled_service_carries_its_origin_and_the_owners_line_and_namespace() -> None:
    owner = load(RAY_SERVICE)
    serve = CATALOG.services(owner)[1]
    assert created_by(serve) == "RayService vllm"
    assert serve["metadata"]["namespace"] == "llm"
    assert serve["metadata"].line == 3
    assert list(service_env(serve, assumed_cluster_ip="10.0.0.1"))[:2] == [
        "VLLM_SERVE_SVC_SERVICE_HOST", "VLLM_SERVE_SVC_SERVICE_PORT"]
    assert service_env(CATALOG.services(owner)[0], assumed_cluster_ip="10.0.0.1") == {}  # headless


def test_a_service_already_present_is_not_modelled_again() -> None:
    owner = load(RAY_SERVICE)
    existing = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "vllm-serve-svc", "namespace": "llm"}}
    assert [s["metadata"]["name"] for _, s in controller_services([owner], CATALOG, "default")] == [
        "vllm-head-svc", "vllm-serve-svc"]
    assert [s["metadata"]["name"] for _, s in controller_services([owner], CATALOG, "default", [existing])] == [
        "vllm-head-svc"]
    assert [s["metadata"]["name"] for _, s in controller_services([owner, existing], CATALOG, "default")] == [
        "vllm-head-svc"]


VLLM_POD = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: engine, namespace: llm}
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.9.2
    """


def test_a_cr_named_vllm_is_judged_by_the_service_it_makes_and_breaks_its_neighbours() -> None:
    runtime = load("""\
        apiVersion: production-stack.vllm.ai/v1alpha1
        kind: VLLMRuntime
        metadata: {name: vllm, namespace: llm}
        spec: {vllmConfig: {v1: true}}
        """)
    pod = load(VLLM_POD)
    findings = analyze([Item(runtime, "runtime.yaml"), Item(pod, "pod.yaml")], Settings())
    on_service = [f for f in findings if f.rule == "service-link-collision" and f.object.kind == "Service"]
    assert [(f.file, f.line, f.object.name) for f in on_service] == [("runtime.yaml", 3, "vllm")]
    message = on_service[0].message
    assert message.startswith('Rename Service "vllm" (made by VLLMRuntime vllm\'s controller)')
    assert message.endswith("it breaks VLLMRuntime llm/vllm (container vllm, runtime.yaml:4), "
                            "Pod llm/engine (container vllm, pod.yaml:6)")
    on_pod = [f for f in findings if f.rule == "service-link-collision" and f.object.kind == "Pod"]
    assert [(f.variable, f.line) for f in on_pod] == [("VLLM_PORT", 6)]
