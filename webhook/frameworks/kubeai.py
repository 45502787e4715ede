"""KubeAI: Model (kubeai.org/v1). The controller builds each model pod from the Model: a
``server`` container with ``spec.args``, ``spec.env`` (a map) and ``spec.envFrom``; its image
comes from ``spec.image`` or the resource profile in KubeAI's own config (not in the input).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import Framework, Kind, VirtualPod
from webhook.frameworks.envmaps import env_entries, virtual_pod

_VLLM_ENGINE = "VLLM"


def _pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    engine = spec.get("engine")
    return [virtual_pod(("spec",), "server", env_entries(spec.get("env")),
                        vllm=engine == _VLLM_ENGINE if isinstance(engine, str) else None,
                        image=spec.get("image"), args=spec.get("args") or (),
                        env_from=spec.get("envFrom"), at=spec)]


FRAMEWORK = Framework(
    name="KubeAI",
    summary="An OpenAI-compatible model server operator: one Model object per model.",
    kinds=(Kind("kubeai.org", "Model", virtual=_pods,
                reads="`spec.env` (a map), `spec.envFrom`, `spec.args`, `spec.image`; `spec.engine: VLLM` "
                      "means the container runs vLLM (other engines: not vLLM)",
                makes="none per Model (one `kubeai` Service for all models)"),),
    notes="Model pods keep service links on (KubeAI does not set `enableServiceLinks`). Without "
          "`spec.image` the vLLM release is unknown (it comes from KubeAI's resource profiles).",
    source="kubeai-project/kubeai api/k8s/v1/model_types.go, internal/modelcontroller/engine_vllm.go",
)
