"""KServe: InferenceService, ServingRuntime, LLMInferenceService (serving.kserve.io).

The huggingfaceserver runtime serves generative models with vLLM as its backend, unless it is
started with ``--backend=huggingface``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import ANY, Framework, Kind, Pattern, image, under
from webhook.frameworks.services import controller_service, owner_name

# A component is an inline PodSpec; the framework shortcuts are single containers within it.
_SHORTCUTS = (
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton",
    "onnx", "huggingface", "pmml", "lightgbm", "paddle",
)  # fmt: skip
_PREDICTOR = (
    Pattern((), role="predictor"),
    Pattern(("workerSpec",), role="predictor/worker"),
    *(Pattern((name,), role=f"predictor/{name}", shortcut=True) for name in _SHORTCUTS),
)
_INFERENCE_SERVICE = (
    *under(_PREDICTOR, "spec", "predictor"),
    Pattern(("spec", "transformer"), role="transformer"),
    Pattern(("spec", "explainer"), role="explainer"),
    Pattern(("spec", "explainer", "art"), role="explainer/art", shortcut=True),
    *under(_PREDICTOR, "spec", "canary", ANY, "predictor", role="canary[{}]"),
)
_SERVING_RUNTIME = (Pattern(("spec",)), Pattern(("spec", "workerSpec"), role="worker"))
_MAIN = ("main",)  # the LLMInferenceService container the controller runs vLLM in
_LLM_INFERENCE_SERVICE = (
    Pattern(("spec", "template"), vllm=_MAIN),
    Pattern(("spec", "worker"), role="worker", vllm=_MAIN),
    Pattern(("spec", "prefill", "template"), role="prefill", vllm=_MAIN),
    Pattern(("spec", "prefill", "worker"), role="prefill/worker", vllm=_MAIN),
    Pattern(("spec", "router", "scheduler", "template"), role="scheduler"),
    Pattern(("spec", "router", "scheduler", "tokenizer", "template"), role="scheduler/tokenizer"),
)

DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
_KNATIVE_MODES = ("Serverless", "Knative")
_HTTP_PORT = 80  # constants.CommonDefaultHttpPort


def _port_name(component: Any, fallback: str) -> str:
    """The first container port's name (createDefaultSvc), else the component's name."""
    containers = component.get("containers") if isinstance(component, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    ports = first.get("ports") if isinstance(first, Mapping) else None
    name = ports[0].get("name") if isinstance(ports, list) and ports and isinstance(ports[0], Mapping) else None
    return name if isinstance(name, str) and name else fallback


def _isvc_services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per component: ``<isvc>-<component>``. Standard (RawDeployment) mode: a ClusterIP Service.
    Knative mode: Knative's ExternalName route Service plus the first revision's ClusterIP Services
    ``<isvc>-<component>-00001`` and ``...-00001-private``."""
    name, spec = owner_name(obj), obj.get("spec")
    if name is None or not isinstance(spec, Mapping):
        return []
    annotations = (obj.get("metadata") or {}).get("annotations")
    mode = annotations.get(DEPLOYMENT_MODE) if isinstance(annotations, Mapping) else None
    services = []
    for component in ("predictor", "transformer", "explainer"):
        if component not in spec:
            continue
        service = f"{name}-{component}"
        if mode in _KNATIVE_MODES:
            services += [controller_service(obj, service, [], external=True),
                         controller_service(obj, f"{service}-00001", [("http", _HTTP_PORT)]),
                         controller_service(obj, f"{service}-00001-private", [("http", _HTTP_PORT)])]
        else:
            services.append(controller_service(obj, service, [(_port_name(spec[component], service), _HTTP_PORT)]))
    return services


_COMPONENTS = ("`spec.predictor` (an inline pod spec; its `workerSpec`; the single-container shortcuts "
               "`model`, `huggingface`, `pytorch`, ...), `spec.transformer`, `spec.explainer`, `spec.canary[].predictor`")
FRAMEWORK = Framework(
    name="KServe",
    summary="Model serving on Kubernetes: InferenceService, ServingRuntime, LLMInferenceService.",
    kinds=(
        Kind("serving.kserve.io", "InferenceService", _INFERENCE_SERVICE, services=_isvc_services,
             reads=_COMPONENTS,
             makes="per component `<name>-predictor`/`-transformer`/`-explainer`: ClusterIP in Standard "
                   "(RawDeployment) mode, the default; with annotation `serving.kserve.io/deploymentMode: "
                   "Serverless`/`Knative`: an ExternalName Service and the revision's ClusterIP Services "
                   "`<name>-predictor-00001` and `<name>-predictor-00001-private`"),
        Kind("serving.kserve.io", "ServingRuntime", _SERVING_RUNTIME,
             reads="`spec` (its `containers`), `spec.workerSpec`"),
        Kind("serving.kserve.io", "ClusterServingRuntime", _SERVING_RUNTIME, reads="as ServingRuntime"),
        Kind("serving.kserve.io", "LLMInferenceService", _LLM_INFERENCE_SERVICE,
             reads="`spec.template`, `spec.worker`, `spec.prefill.template`, `spec.prefill.worker`, "
                   "`spec.router.scheduler.template`, `spec.router.scheduler.tokenizer.template`; the "
                   "container `main` of the first four runs vLLM (the controller supplies its image)"),
        Kind("serving.kserve.io", "LLMInferenceServiceConfig", _LLM_INFERENCE_SERVICE,
             reads="as LLMInferenceService"),
    ),
    images=(image(r"(^|/)huggingfaceserver(-gpu)?[:@]|(^|/)huggingfaceserver$", unless=r"--backend[= ]huggingface\b",
                  why="KServe's huggingfaceserver serves with vLLM unless `--backend=huggingface`"),
            image(r"(^|/)kserve-storage-initializer[:@]", vllm=False, why="KServe's model downloader"),
            image(r"(^|/)(kserve-)?agent[:@]|(^|/)kserve-router[:@]", vllm=False, why="KServe's agent and router")),
    notes="Headless Services for multi-node predictors (`workerSpec`) inject nothing and are not listed. "
          "The `serviceClusterIPNone` setting of KServe's `inferenceservice-config` makes the predictor "
          "Service headless; it is not read.",
    source="kserve/kserve pkg/controller/v1beta1/inferenceservice/reconcilers/service/service_reconciler.go, "
           "pkg/constants/constants.go",
)
