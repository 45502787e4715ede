"""LeaderWorkerSet (leaderworkerset.x-k8s.io) and DisaggregatedSet: multi-node vLLM groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import ANY, Framework, Kind, template, under
from webhook.frameworks.services import controller_service, owner_name

TEMPLATES = (
    template("leaderWorkerTemplate", "leaderTemplate", role="leader"),
    template("leaderWorkerTemplate", "workerTemplate", role="worker"),
)


def _services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The headless Service ``<name>`` that gives each pod its DNS name (no service links)."""
    name = owner_name(obj)
    return [] if name is None else [controller_service(obj, name, [], headless=True)]


FRAMEWORK = Framework(
    name="LeaderWorkerSet",
    summary="Groups of pods (a leader and workers) created and scaled together.",
    kinds=(
        Kind("leaderworkerset.x-k8s.io", "LeaderWorkerSet", under(TEMPLATES, "spec"), services=_services,
             reads="`spec.leaderWorkerTemplate.leaderTemplate`, `spec.leaderWorkerTemplate.workerTemplate`",
             makes="`<name>` (headless: injects nothing)"),
        Kind("disaggregatedset.x-k8s.io", "DisaggregatedSet", under(TEMPLATES, "spec", "roles", ANY, "spec", role="{}"),
             reads="`spec.roles[].spec.leaderWorkerTemplate.*Template`"),
    ),
    source="kubernetes-sigs/lws pkg/controllers/leaderworkerset_controller.go (headless Service per set)",
)
