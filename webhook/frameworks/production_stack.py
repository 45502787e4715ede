"""vLLM production-stack: its Helm chart and its operator (production-stack.vllm.ai/v1alpha1).

The chart renders ordinary Deployments and Services (``<release>-router-service``,
``<release>-<model>-engine-service``), read as they are. The operator's VLLMRuntime becomes a
Deployment whose vLLM container gets ``VLLM_USE_V1`` (from ``spec.vllmConfig.v1``) and
``spec.vllmConfig.env``, and a ClusterIP Service named like the VLLMRuntime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import Framework, Kind, VirtualPod, image
from webhook.frameworks.envmaps import env_entries, env_list, virtual_pod
from webhook.frameworks.services import controller_service, owner_name
from webhook.manifests import line_of


def _image(deployment: Any) -> str | None:
    spec = deployment.get("image") if isinstance(deployment, Mapping) else None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        return None
    registry = spec.get("registry")
    return f"{registry}/{spec['name']}" if isinstance(registry, str) and registry else spec["name"]


def _runtime_pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    config: Mapping[str, Any] = spec["vllmConfig"] if isinstance(spec.get("vllmConfig"), Mapping) else {}
    use_v1 = env_entries({"VLLM_USE_V1": "1" if config.get("v1") is True else "0"})
    for entry in use_v1:  # the operator writes it from spec.vllmConfig.v1
        entry.line = line_of(config, "v1") or line_of(config) or line_of(spec) or 0  # type: ignore[attr-defined]
    return [virtual_pod(("spec", "vllmConfig"), "vllm", [*use_v1, *env_list(config.get("env"))], vllm=True,
                        image=_image(spec.get("deploymentConfig")), args=config.get("extraArgs") or (),
                        at=config or spec)]


def _services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    name = owner_name(obj)
    return [] if name is None else [controller_service(obj, name, [("http", 80)])]


FRAMEWORK = Framework(
    name="vLLM production-stack",
    summary="vLLM's reference stack: a router in front of vLLM engines (Helm chart or operator).",
    kinds=(
        Kind("production-stack.vllm.ai", "VLLMRuntime", virtual=_runtime_pods, services=_services,
             reads="`spec.vllmConfig.env` (an env list), `spec.vllmConfig.v1` (-> `VLLM_USE_V1`), "
                   "`spec.vllmConfig.extraArgs`, image `spec.deploymentConfig.image`",
             makes="`<name>` (ClusterIP, port http 80)"),
        Kind("production-stack.vllm.ai", "VLLMRouter", services=_services,
             makes="`<name>` (ClusterIP, port http 80)"),
    ),
    images=(image(r"(^|/)lmstack-router[:@]", vllm=False, why="production-stack's router"),
            image(r"(^|/)lmstack-sidecar[:@]", vllm=False, why="production-stack's LoRA sidecar")),
    notes="Chart renders need nothing special: the router Service `<release>-router-service` "
          "(`vllm-router-service` for release `vllm`) injects `VLLM_ROUTER_SERVICE_*` into every pod "
          "of the namespace, which the service-link rules report.",
    source="vllm-project/production-stack operator/internal/controller/vllmruntime_controller.go, helm/templates",
)
