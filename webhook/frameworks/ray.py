"""KubeRay: RayCluster, RayService, RayJob, RayCronJob (ray.io/v1).

Ray Serve sets a replica's environment from ``runtime_env.env_vars``: per application and per
deployment (``ray_actor_options.runtime_env``; for ``ray.serve.llm`` apps each ``llm_configs[]``
entry's ``runtime_env``), the deployment's keys overriding the application's. These live in
``serveConfigV2`` (RayService) or ``runtimeEnvYAML`` (RayJob), YAML held in a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.frameworks.base import ANY, Framework, Kind, VirtualPod, image, template, under
from webhook.frameworks.envmaps import embedded_yaml, env_entries, virtual_pod
from webhook.frameworks.services import controller_service, owner_name

_CLUSTER = (
    template("headGroupSpec", "template", role="head"),
    template("workerGroupSpecs", ANY, "template", role="workerGroup[{}]"),
)
_JOB = (*under(_CLUSTER, "rayClusterSpec"), template("submitterPodTemplate", role="submitter"))
_SERVE_PORT = 8000
_LLM_IMPORT = "ray.serve.llm"


def _get(node: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _env_vars(runtime_env: Any) -> Any:
    return _get(runtime_env, "env_vars")


def _head_image(cluster: Any) -> Any:
    return _get(cluster, "headGroupSpec", "template", "spec", "containers", 0, "image")


def _serve_pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
    """A pod per Ray Serve deployment (or application) that sets ``env_vars``."""
    spec = obj.get("spec")
    config, shift = embedded_yaml(spec, "serveConfigV2")
    image_ref = _head_image(_get(spec, "rayClusterConfig"))
    pods = []
    for index, app in enumerate(_list(_get(config, "applications"))):
        name = _get(app, "name") or str(index)
        imports = str(_get(app, "import_path") or "")
        vllm = True if imports.startswith(_LLM_IMPORT) else None
        app_env = env_entries(_env_vars(_get(app, "runtime_env")), shift)
        children = [(_get(d, "name") or str(i), _get(d, "ray_actor_options", "runtime_env"), d)
                    for i, d in enumerate(_list(_get(app, "deployments")))]
        children += [(_get(c, "model_loading_config", "model_id") or f"llm_configs[{i}]", _get(c, "runtime_env"), c)
                     for i, c in enumerate(_list(_get(app, "args", "llm_configs")))]
        own = [(child, env_entries(_env_vars(runtime_env), shift), at) for child, runtime_env, at in children]
        own = [(child, env, at) for child, env, at in own if env]
        path = ("spec", "serveConfigV2")
        for child, env, at in own:  # the deployment's env_vars override the application's
            pods.append(virtual_pod(path, f"serve:{name}/{child}", [*app_env, *env], vllm=vllm,
                                    image=image_ref, links=False, at=at))
        if app_env and len(own) < max(len(children), 1):
            pods.append(virtual_pod(path, f"serve:{name}", app_env, vllm=vllm, image=image_ref,
                                    links=False, at=app))
    return pods


def _job_pods(obj: Mapping[str, Any]) -> list[VirtualPod]:
    spec = obj.get("spec")
    runtime_env, shift = embedded_yaml(spec, "runtimeEnvYAML")
    env = env_entries(_env_vars(runtime_env), shift)
    if not env:
        return []
    return [virtual_pod(("spec", "runtimeEnvYAML"), "job", env, vllm=None,
                        image=_head_image(_get(spec, "rayClusterSpec")), links=False, at=runtime_env)]


def _head_service(obj: Mapping[str, Any], cluster: Any, name: str) -> dict[str, Any]:
    """``<name>-head-svc``: headless unless the head's ``serviceType`` is NodePort/LoadBalancer
    (KubeRay's ``BuildServiceForHeadPod``; ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE is an operator flag)."""
    custom = _get(cluster, "headGroupSpec", "headService", "metadata", "name")
    service_type = _get(cluster, "headGroupSpec", "serviceType")
    headless = service_type in (None, "", "ClusterIP")
    return controller_service(obj, custom if isinstance(custom, str) and custom else f"{name}-head-svc",
                              [("gcs-server", 6379), ("dashboard", 8265), ("client", 10001)], headless=headless)


def _serve_service(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``<name>-serve-svc``: a ClusterIP Service on the head's ``serve`` port."""
    return controller_service(obj, f"{name}-serve-svc", [("serve", _SERVE_PORT)])


def _cluster_services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    name = owner_name(obj)
    if name is None:
        return []
    services = [_head_service(obj, obj.get("spec"), name)]
    annotations = _get(obj, "metadata", "annotations")
    if isinstance(annotations, Mapping) and str(annotations.get("ray.io/enable-serve-service")).lower() == "true":
        services.append(_serve_service(obj, name))
    return services


def _service_services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    name = owner_name(obj)
    if name is None:
        return []
    return [_head_service(obj, _get(obj, "spec", "rayClusterConfig"), name), _serve_service(obj, name)]


def _job_services(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    name = owner_name(obj)
    return [] if name is None else [_head_service(obj, _get(obj, "spec", "rayClusterSpec"), name)]


_POD_TEMPLATES = "the head and every worker group's pod template"
FRAMEWORK = Framework(
    name="KubeRay",
    summary="Ray clusters, Ray Serve applications and Ray jobs on Kubernetes.",
    kinds=(
        Kind("ray.io", "RayCluster", under(_CLUSTER, "spec"), services=_cluster_services,
             reads=f"{_POD_TEMPLATES} (`spec.headGroupSpec.template`, `spec.workerGroupSpecs[].template`)",
             makes="`<name>-head-svc` (headless); `<name>-serve-svc` (ClusterIP) with annotation "
                   "`ray.io/enable-serve-service: \"true\"`"),
        Kind("ray.io", "RayService", under(_CLUSTER, "spec", "rayClusterConfig"), _serve_pods,
             _service_services,
             reads=f"{_POD_TEMPLATES} under `spec.rayClusterConfig`; `spec.serveConfigV2` (a YAML string): "
                   "`applications[].runtime_env.env_vars`, `applications[].deployments[].ray_actor_options"
                   ".runtime_env.env_vars` and `applications[].args.llm_configs[].runtime_env.env_vars`, "
                   "a deployment's keys overriding its application's",
             makes="`<name>-head-svc` (headless), `<name>-serve-svc` (ClusterIP, port `serve` 8000)"),
        Kind("ray.io", "RayJob", under(_JOB, "spec"), _job_pods, _job_services,
             reads=f"{_POD_TEMPLATES} under `spec.rayClusterSpec`, `spec.submitterPodTemplate`; "
                   "`spec.runtimeEnvYAML` (a YAML string): `env_vars`",
             makes="`<name>-head-svc` (headless)"),
        Kind("ray.io", "RayCronJob", under(_JOB, "spec", "jobTemplate"),
             reads="as RayJob, under `spec.jobTemplate`"),
    ),
    images=(image(r"(^|/)ray-llm[:@]", why="Ray's LLM image runs Ray Serve LLM on vLLM"),),
    notes="Serve replicas run in the Ray pods, so service links reach them there: the virtual "
          "containers built from `env_vars` are analysed with links off (the pods report them). "
          "An application whose `import_path` is `ray.serve.llm:...` runs vLLM; others are judged by image.",
    source="ray-project/kuberay ray-operator/controllers/ray/common/service.go, utils/util.go",
)
