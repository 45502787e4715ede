"""AIBrix: StormService, RoleSet, RayClusterFleet (orchestration.aibrix.ai/v1alpha1)."""

from __future__ import annotations

from webhook.frameworks.base import ANY, Framework, Kind, image, template, under
from webhook.frameworks.ray import FRAMEWORK as RAY

_ROLES = (template("roles", ANY, "template", role="{}"),)
_RAY_CLUSTER = next(k for k in RAY.kinds if k.kind == "RayCluster").sites

FRAMEWORK = Framework(
    name="AIBrix",
    summary="vLLM control plane: role-based and Ray-based model deployments.",
    kinds=(
        Kind("orchestration.aibrix.ai", "StormService", under(_ROLES, "spec", "template", "spec"),
             reads="`spec.template.spec.roles[].template`"),
        Kind("orchestration.aibrix.ai", "RoleSet", under(_ROLES, "spec"), reads="`spec.roles[].template`"),
        Kind("orchestration.aibrix.ai", "RayClusterFleet",
             tuple(p.under("spec", "template") for p in _RAY_CLUSTER),
             reads="the RayCluster spec at `spec.template.spec` (head and worker group templates)"),
    ),
    images=(image(r"(^|/)aibrix/runtime[:@]", vllm=False, why="AIBrix's runtime sidecar (downloads, metrics)"),
            image(r"(^|/)aibrix/[^/]*(router|gateway|sidecar)[^/]*[:@]", vllm=False, why="AIBrix gateway components")),
)
