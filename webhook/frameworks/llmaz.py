"""llmaz: Playground, BackendRuntime and Service (inference.llmaz.io/v1alpha1).

A Playground picks a BackendRuntime (``vllm`` unless ``backendRuntimeConfig.backendName`` says
otherwise) and adds ``envs`` and ``args``; llmaz turns it into an inference Service, which runs
as a LeaderWorkerSet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import Framework, Kind, VirtualPod, template
from webhook.frameworks.envmaps import env_list, virtual_pod
from webhook.frameworks.services import controller_service, owner_name

_BACKEND_PORT = 8080  # modelSource.DEFAULT_BACKEND_PORT


def _playground_pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
    spec = obj.get("spec")
    config = spec.get("backendRuntimeConfig") if isinstance(spec, Mapping) else None
    if not isinstance(config, Mapping):
        return []
    backend = config.get("backendName", "vllm")
    return [virtual_pod(("spec", "backendRuntimeConfig"), "model-runner", env_list(config.get("envs")),
                        vllm=backend == "vllm" if isinstance(backend, str) else None,
                        args=config.get("args") or (), at=config)]


def _runtime_pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    return [virtual_pod(("spec",), "model-runner", env_list(spec.get("envs")), vllm=None,
                        image=spec.get("image"), command=spec.get("command") or (), at=spec)]


def _services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``<name>-lb`` (ClusterIP, port http 8080) and the LeaderWorkerSet's headless ``<name>``."""
    name = owner_name(obj)
    if name is None:
        return []
    return [controller_service(obj, f"{name}-lb", [("http", _BACKEND_PORT)]),
            controller_service(obj, name, [], headless=True)]


FRAMEWORK = Framework(
    name="llmaz",
    summary="Inference platform: Playgrounds of OpenModels on BackendRuntimes (vLLM by default).",
    kinds=(
        Kind("inference.llmaz.io", "Playground", virtual=_playground_pods, services=_services,
             reads="`spec.backendRuntimeConfig.envs` (an env list) and `.args`; backend `vllm` (the default) runs vLLM",
             makes="through its inference Service: `<name>-lb` (ClusterIP), `<name>` (headless)"),
        Kind("inference.llmaz.io", "BackendRuntime", virtual=_runtime_pods,
             reads="`spec.envs`, `spec.command`, `spec.image`"),
        Kind("inference.llmaz.io", "Service",
             (template("spec", "workloadTemplate", "leaderTemplate", role="leader"),
              template("spec", "workloadTemplate", "workerTemplate", role="worker")), services=_services,
             reads="`spec.workloadTemplate.leaderTemplate`, `spec.workloadTemplate.workerTemplate`",
             makes="`<name>-lb` (ClusterIP, port http 8080), `<name>` (headless)"),
    ),
    source="InftyAI/llmaz api/inference/v1alpha1/*_types.go, pkg/controller/inference/service_controller.go",
)
