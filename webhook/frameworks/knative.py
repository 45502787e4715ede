"""Knative Serving: Service (serving.knative.dev/v1).

Knative's defaulting sets ``enableServiceLinks: false`` on revision pods unless the Service
says otherwise (``config-defaults``: ``enable-service-links: "false"``), so Services of the
namespace do not reach them; the config key ``frameworks.knative.enableServiceLinks`` says
otherwise for clusters that changed that default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import Framework, Kind, image, template
from webhook.frameworks.services import controller_service, owner_name


def _services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The route's ExternalName Service ``<name>`` and the first revision's ClusterIP Services."""
    name = owner_name(obj)
    if name is None:
        return []
    return [controller_service(obj, name, [], external=True),
            controller_service(obj, f"{name}-00001", [("http", 80)]),
            controller_service(obj, f"{name}-00001-private", [("http", 80)])]


SERVICE = Kind("serving.knative.dev", "Service", (template("spec", "template"),), services=_services,
               links_default=False, reads="`spec.template`; `enableServiceLinks` defaults to false",
               makes="`<name>` (ExternalName), `<name>-00001` and `<name>-00001-private` (ClusterIP)")

FRAMEWORK = Framework(
    name="Knative Serving",
    summary="Serverless Services: revisions of a pod template behind a route.",
    kinds=(SERVICE,),
    images=(image(r"(^|/)knative-releases/.*/queue[:@]", vllm=False, why="Knative's queue-proxy sidecar"),),
    options={"enableServiceLinks": "`true` when the cluster's `config-defaults` sets `enable-service-links: "
                                   "\"true\"` (or `\"default\"`): revision pods then get service links"},
    source="knative/serving pkg/apis/serving/v1/revision_defaults.go, config/core/configmaps/defaults.yaml",
)
