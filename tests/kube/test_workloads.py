"""pod_spec_sites(): every kind and path of research doc §3, the generic fallback, bad shapes."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from webhook.kube.workloads import (
    WORKLOAD_KINDS,
    PodSpecSite,
    api_group,
    containers,
    format_path,
    is_workload,
    pod_spec_sites,
    service_links_enabled,
)


def pod_spec(name: str = "vllm", **extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": name, "image": "vllm/vllm-openai"}], **extra}


def template(name: str = "vllm", **labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": name}}, "spec": pod_spec(name)}


def obj(api_version: str, kind: str, **body: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, **body}


def summary(manifest: Any) -> list[tuple[str, str, str]]:
    """(path, role, first container name) of each site."""
    result = []
    for site in pod_spec_sites(manifest):
        names = [c.name for c in containers(site)]
        result.append((format_path(site.path), site.role, names[0] if names else ""))
    return result


# --- core and apps --------------------------------------------------------------------------


def test_pod() -> None:
    manifest = obj("v1", "Pod", spec=pod_spec())
    [site] = pod_spec_sites(manifest)
    assert site == PodSpecSite(("spec",), manifest["spec"], manifest["metadata"], "")
    assert summary(manifest) == [("spec", "", "vllm")]


def test_pod_template() -> None:
    manifest = obj("v1", "PodTemplate", template=template())
    [site] = pod_spec_sites(manifest)
    assert site.path == ("template", "spec")
    assert site.template_metadata == {"labels": {"app": "vllm"}}


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ReplicationController"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("extensions/v1beta1", "Deployment"),
        ("batch/v1", "Job"),
        ("argoproj.io/v1alpha1", "Rollout"),
    ],
)
def test_spec_template_spec(api_version: str, kind: str) -> None:
    manifest = obj(api_version, kind, spec={"replicas": 1, "template": template()})
    [site] = pod_spec_sites(manifest)
    assert site.path == ("spec", "template", "spec")
    assert site.spec is manifest["spec"]["template"]["spec"]
    assert site.template_metadata is manifest["spec"]["template"]["metadata"]
    assert site.role == ""
    assert is_workload(manifest)


def test_knative_service_pods_have_service_links_off_unless_stated() -> None:
    manifest = obj("serving.knative.dev/v1", "Service", spec={"template": template()})
    [site] = pod_spec_sites(manifest)
    assert site.path == ("spec", "template", "spec")
    assert site.template_metadata is manifest["spec"]["template"]["metadata"]
    assert site.spec["containers"] is manifest["spec"]["template"]["spec"]["containers"]
    assert not service_links_enabled(site.spec)
    manifest["spec"]["template"]["spec"]["enableServiceLinks"] = True
    [site] = pod_spec_sites(manifest)
    assert site.spec is manifest["spec"]["template"]["spec"] and service_links_enabled(site.spec)


def test_core_service_is_not_knative_service() -> None:
    # A core Service has no pod spec, even one shaped like Knative's: core kinds are never walked.
    core = obj("v1", "Service", spec={"template": template()})
    assert pod_spec_sites(core) == []
    assert not is_workload(core)
    assert pod_spec_sites(obj("v1", "ConfigMap", data={"containers": [{"name": "x"}]})) == []
    assert ("serving.knative.dev", "Service") in WORKLOAD_KINDS
    assert ("", "Service") not in WORKLOAD_KINDS


def test_cron_job() -> None:
    manifest = obj("batch/v1", "CronJob", spec={"jobTemplate": {"spec": {"template": template()}}})
    [site] = pod_spec_sites(manifest)
    assert site.path == ("spec", "jobTemplate", "spec", "template", "spec")
    assert site.template_metadata == {"labels": {"app": "vllm"}}


# --- LWS ------------------------------------------------------------------------------------


def test_leader_worker_set() -> None:
    lws = {"leaderTemplate": template("leader"), "workerTemplate": template("worker")}
    manifest = obj(
        "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", spec={"leaderWorkerTemplate": lws}
    )
    assert summary(manifest) == [
        ("spec.leaderWorkerTemplate.leaderTemplate.spec", "leader", "leader"),
        ("spec.leaderWorkerTemplate.workerTemplate.spec", "worker", "worker"),
    ]
    assert [s.template_metadata for s in pod_spec_sites(manifest)] == [
        {"labels": {"app": "leader"}},
        {"labels": {"app": "worker"}},
    ]


def test_leader_worker_set_without_leader_template() -> None:
    manifest = obj(
        "leaderworkerset.x-k8s.io/v1",
        "LeaderWorkerSet",
        spec={"leaderWorkerTemplate": {"size": 2, "workerTemplate": template("worker")}},
    )
    assert summary(manifest) == [
        ("spec.leaderWorkerTemplate.workerTemplate.spec", "worker", "worker")
    ]


def test_disaggregated_set() -> None:
    def role(name: str) -> dict[str, Any]:
        lws = {"leaderTemplate": template(f"{name}-l"), "workerTemplate": template(f"{name}-w")}
        return {"name": name, "spec": {"replicas": 1, "leaderWorkerTemplate": lws}}

    manifest = obj(
        "disaggregatedset.x-k8s.io/v1",
        "DisaggregatedSet",
        spec={"roles": [role("prefill"), role("decode")]},
    )
    assert summary(manifest) == [
        (
            "spec.roles[0].spec.leaderWorkerTemplate.leaderTemplate.spec",
            "prefill/leader",
            "prefill-l",
        ),
        (
            "spec.roles[1].spec.leaderWorkerTemplate.leaderTemplate.spec",
            "decode/leader",
            "decode-l",
        ),
        (
            "spec.roles[0].spec.leaderWorkerTemplate.workerTemplate.spec",
            "prefill/worker",
            "prefill-w",
        ),
        (
            "spec.roles[1].spec.leaderWorkerTemplate.workerTemplate.spec",
            "decode/worker",
            "decode-w",
        ),
    ]
    assert pod_spec_sites(manifest)[1].template_metadata == {"labels": {"app": "decode-l"}}


# --- KubeRay --------------------------------------------------------------------------------


def ray_cluster() -> dict[str, Any]:
    return {
        "headGroupSpec": {"rayStartParams": {}, "template": template("head")},
        "workerGroupSpecs": [
            {"groupName": "gpu", "template": template("gpu-worker")},
            {"template": template("anon-worker")},
        ],
    }


RAY_CLUSTER_SITES = [
    ("headGroupSpec.template.spec", "head", "head"),
    ("workerGroupSpecs[0].template.spec", "workerGroup[gpu]", "gpu-worker"),
    ("workerGroupSpecs[1].template.spec", "workerGroup[1]", "anon-worker"),
]


def prefixed(prefix: str, sites: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [(f"{prefix}.{path}", role, name) for path, role, name in sites]


def test_ray_cluster() -> None:
    manifest = obj("ray.io/v1", "RayCluster", spec=ray_cluster())
    assert summary(manifest) == prefixed("spec", RAY_CLUSTER_SITES)
    assert pod_spec_sites(manifest)[1].template_metadata == {"labels": {"app": "gpu-worker"}}


def test_ray_service() -> None:
    manifest = obj(
        "ray.io/v1", "RayService", spec={"serveConfigV2": "", "rayClusterConfig": ray_cluster()}
    )
    assert summary(manifest) == prefixed("spec.rayClusterConfig", RAY_CLUSTER_SITES)


RAY_JOB_SITES = [  # in a RayJobSpec
    *prefixed("rayClusterSpec", RAY_CLUSTER_SITES),
    ("submitterPodTemplate.spec", "submitter", "submitter"),
]


def ray_job() -> dict[str, Any]:
    return {
        "entrypoint": "python x.py",
        "rayClusterSpec": ray_cluster(),
        "submitterPodTemplate": template("submitter"),
    }


def test_ray_job() -> None:
    assert summary(obj("ray.io/v1", "RayJob", spec=ray_job())) == prefixed("spec", RAY_JOB_SITES)


def test_ray_cron_job() -> None:
    manifest = obj(
        "ray.io/v1", "RayCronJob", spec={"schedule": "* * * * *", "jobTemplate": ray_job()}
    )
    assert summary(manifest) == prefixed("spec.jobTemplate", RAY_JOB_SITES)


# --- KServe ---------------------------------------------------------------------------------


def isvc(**spec: Any) -> dict[str, Any]:
    return obj("serving.kserve.io/v1beta1", "InferenceService", spec=spec)


def test_inference_service_inline_pod_specs() -> None:
    manifest = isvc(
        predictor={
            "minReplicas": 1,
            "enableServiceLinks": False,
            "containers": [{"name": "kserve-container"}],
            "workerSpec": pod_spec("worker", pipelineParallelSize=2),
        },
        transformer=pod_spec("transformer"),
        explainer=pod_spec("explainer"),
    )
    assert summary(manifest) == [
        ("spec.predictor", "predictor", "kserve-container"),
        ("spec.predictor.workerSpec", "predictor/worker", "worker"),
        ("spec.transformer", "transformer", "transformer"),
        ("spec.explainer", "explainer", "explainer"),
    ]
    sites = pod_spec_sites(manifest)
    assert not service_links_enabled(sites[0].spec)
    assert service_links_enabled(sites[1].spec)  # workerSpec is its own pod spec
    assert all(site.template_metadata is None for site in sites)


@pytest.mark.parametrize(
    "framework",
    [
        "model",
        "sklearn",
        "xgboost",
        "tensorflow",
        "pytorch",
        "triton",
        "onnx",
        "huggingface",
        "pmml",
        "lightgbm",
        "paddle",
    ],
)
def test_inference_service_single_container_shortcuts(framework: str) -> None:
    shortcut = {
        "modelFormat": {"name": "huggingface"},
        "env": [{"name": "VLLM_PORT", "value": "8000"}],
    }
    manifest = isvc(predictor={"enableServiceLinks": False, framework: shortcut})
    predictor, site = pod_spec_sites(manifest)
    assert predictor.path == ("spec", "predictor") and list(containers(predictor)) == []
    assert (site.path, site.role, site.shortcut) == (
        ("spec", "predictor", framework),
        f"predictor/{framework}",
        True,
    )
    assert site.spec == {"containers": [shortcut], "enableServiceLinks": False}
    [container] = containers(site)
    assert container.container is shortcut
    assert (container.kind, container.index, container.path) == (
        "containers",
        0,
        ("spec", "predictor", framework),
    )
    assert not service_links_enabled(site.spec)


def test_inference_service_shortcut_inherits_default_links() -> None:
    [_, site] = pod_spec_sites(isvc(predictor={"model": {"name": "kserve-container"}}))
    assert site.spec == {"containers": [{"name": "kserve-container"}]}
    assert service_links_enabled(site.spec)


def test_inference_service_explainer_art() -> None:
    manifest = isvc(explainer={"art": {"type": "SquareAttack"}})
    assert [(format_path(s.path), s.role, s.shortcut) for s in pod_spec_sites(manifest)] == [
        ("spec.explainer", "explainer", False),
        ("spec.explainer.art", "explainer/art", True),
    ]


def test_inference_service_canary() -> None:
    manifest = isvc(
        predictor={"model": {"name": "main"}},
        canary=[
            {
                "name": "v2",
                "predictor": {"containers": [{"name": "canary"}], "model": {"name": "cm"}},
            }
        ],
    )
    assert summary(manifest) == [
        ("spec.predictor", "predictor", ""),
        ("spec.predictor.model", "predictor/model", "main"),
        ("spec.canary[0].predictor", "canary[v2]/predictor", "canary"),
        ("spec.canary[0].predictor.model", "canary[v2]/predictor/model", "cm"),
    ]


@pytest.mark.parametrize("kind", ["ServingRuntime", "ClusterServingRuntime"])
def test_serving_runtime(kind: str) -> None:
    manifest = obj(
        "serving.kserve.io/v1alpha1",
        kind,
        spec={
            "supportedModelFormats": [],
            "containers": [{"name": "kserve-container"}],
            "workerSpec": pod_spec("worker"),
        },
    )
    assert summary(manifest) == [
        ("spec", "", "kserve-container"),
        ("spec.workerSpec", "worker", "worker"),
    ]


@pytest.mark.parametrize("kind", ["LLMInferenceService", "LLMInferenceServiceConfig"])
@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_llm_inference_service(kind: str, version: str) -> None:
    manifest = obj(
        f"serving.kserve.io/{version}",
        kind,
        spec={
            "model": {"uri": "hf://x"},
            "template": pod_spec("main"),
            "worker": pod_spec("worker"),
            "prefill": {"template": pod_spec("prefill"), "worker": pod_spec("prefill-worker")},
            "router": {
                "scheduler": {
                    "template": pod_spec("scheduler"),
                    "tokenizer": {"template": pod_spec("tok")},
                }
            },
        },
    )
    assert summary(manifest) == [
        ("spec.template", "", "main"),
        ("spec.worker", "worker", "worker"),
        ("spec.prefill.template", "prefill", "prefill"),
        ("spec.prefill.worker", "prefill/worker", "prefill-worker"),
        ("spec.router.scheduler.template", "scheduler", "scheduler"),
        ("spec.router.scheduler.tokenizer.template", "scheduler/tokenizer", "tok"),
    ]


# --- other CRDs -----------------------------------------------------------------------------


def test_jobset() -> None:
    jobs = [
        {"name": "leader", "template": {"spec": {"template": template("l")}}},
        {"name": "workers", "replicas": 2, "template": {"spec": {"template": template("w")}}},
    ]
    manifest = obj("jobset.x-k8s.io/v1alpha2", "JobSet", spec={"replicatedJobs": jobs})
    assert summary(manifest) == [
        ("spec.replicatedJobs[0].template.spec.template.spec", "leader", "l"),
        ("spec.replicatedJobs[1].template.spec.template.spec", "workers", "w"),
    ]
    assert pod_spec_sites(manifest)[1].template_metadata == {"labels": {"app": "w"}}


def test_pytorch_job() -> None:
    replicas = {
        "Master": {"replicas": 1, "template": template("m")},
        "Worker": {"template": template("w")},
    }
    manifest = obj("kubeflow.org/v1", "PyTorchJob", spec={"pytorchReplicaSpecs": replicas})
    assert summary(manifest) == [
        ("spec.pytorchReplicaSpecs.Master.template.spec", "Master", "m"),
        ("spec.pytorchReplicaSpecs.Worker.template.spec", "Worker", "w"),
    ]


# --- generic fallback -----------------------------------------------------------------------


def test_generic_fallback_for_unknown_kinds() -> None:
    manifest = obj(
        "example.com/v1",
        "InferencePool",
        spec={
            "engine": {
                "metadata": {"labels": {"a": "b"}},
                "spec": pod_spec("engine", initContainers=[{"name": "init"}]),
            },
            "routers": [
                {"podSpec": pod_spec("router", sidecar={"containers": [{"name": "nested"}]})}
            ],
            "notPodSpecs": [
                {"containers": ["x", {"image": "no-name"}]},
                {"containers": "x"},
                {"containers": []},
            ],
        },
    )
    assert summary(manifest) == [
        ("spec.engine.spec", "", "engine"),
        ("spec.routers[0].podSpec", "", "router"),
        ("spec.routers[0].podSpec.sidecar", "", "nested"),
    ]
    sites = pod_spec_sites(manifest)
    assert sites[0].template_metadata == {"labels": {"a": "b"}}
    assert sites[1].template_metadata is None
    assert [c.kind for c in containers(sites[0])] == ["containers", "initContainers"]
    assert is_workload(manifest)
    assert not is_workload(obj("example.com/v1", "Thing", spec={"replicas": 1}))


def test_generic_fallback_for_known_kind_with_unknown_group() -> None:
    manifest = obj("apps/v1beta2", "Deployment", spec={"template": template()})
    assert api_group(manifest) == "apps"
    [site] = pod_spec_sites(manifest)
    assert site.path == ("spec", "template", "spec")
    no_version = {"kind": "Deployment", "spec": {"template": template()}}
    assert [s.path for s in pod_spec_sites(no_version)] == [("spec", "template", "spec")]
    custom = obj("example.com/v1", "Deployment", spec={"template": template()})
    [site] = pod_spec_sites(custom)  # found by the walk, with its template metadata
    assert (site.path, site.template_metadata) == (
        ("spec", "template", "spec"),
        {"labels": {"app": "vllm"}},
    )


def test_pod_spec_inside_a_pod_spec_is_walked_not_its_containers() -> None:
    manifest = {"kind": "Odd", "containers": [{"name": "a", "containers": [{"name": "inner"}]}]}
    assert summary(manifest) == [("", "", "a")]


# --- containers -----------------------------------------------------------------------------


def test_containers_all_three_lists_in_order() -> None:
    spec = {
        "ephemeralContainers": [{"name": "debug"}],
        "initContainers": [{"name": "init"}, "bad", {"name": "sidecar", "restartPolicy": "Always"}],
        "containers": [{"name": "a"}, None, {"name": "b"}],
    }
    [site] = pod_spec_sites(obj("v1", "Pod", spec=spec))
    assert [(c.kind, c.index, c.name, c.path) for c in containers(site)] == [
        ("containers", 0, "a", ("spec", "containers", 0)),
        ("containers", 2, "b", ("spec", "containers", 2)),
        ("initContainers", 0, "init", ("spec", "initContainers", 0)),
        ("initContainers", 2, "sidecar", ("spec", "initContainers", 2)),
        ("ephemeralContainers", 0, "debug", ("spec", "ephemeralContainers", 0)),
    ]


def test_container_without_name() -> None:
    [site] = pod_spec_sites(obj("v1", "Pod", spec={"containers": [{"name": 3}]}))
    assert [c.name for c in containers(site)] == [""]


@pytest.mark.parametrize(
    ("spec", "enabled"),
    [
        ({}, True),
        ({"enableServiceLinks": True}, True),
        ({"enableServiceLinks": False}, False),
        ({"enableServiceLinks": "false"}, True),
        ({"enableServiceLinks": 0}, True),
        ({"enableServiceLinks": None}, True),
        (None, True),
        ("x", True),
    ],
)
def test_service_links_enabled(spec: Any, enabled: bool) -> None:
    assert service_links_enabled(spec) is enabled


# --- malformed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        None,
        "x",
        [],
        {},
        {"kind": 3, "apiVersion": ["apps/v1"]},
        obj("v1", "Pod"),
        obj("v1", "Pod", spec=None),
        obj("v1", "Pod", spec="x"),
        obj("apps/v1", "Deployment", spec={"template": None}),
        obj("apps/v1", "Deployment", spec={"template": {"spec": ["x"]}}),
        obj("apps/v1", "Deployment", spec=[{"template": template()}]),
        obj("ray.io/v1", "RayCluster", spec={"workerGroupSpecs": "x"}),
        obj("ray.io/v1", "RayCluster", spec={"workerGroupSpecs": [None, 1, {"template": "x"}]}),
        obj("kubeflow.org/v1", "PyTorchJob", spec={"pytorchReplicaSpecs": ["x"]}),
        obj(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            spec={"predictor": "x", "canary": {"a": 1}},
        ),
    ],
)
def test_malformed_shapes_give_no_sites(manifest: Any) -> None:
    assert pod_spec_sites(manifest) == []


@pytest.mark.parametrize("containers_value", [None, "x", 3, {"name": "a"}])
def test_malformed_container_lists(containers_value: Any) -> None:
    [site] = pod_spec_sites(obj("v1", "Pod", spec={"containers": containers_value}))
    assert list(containers(site)) == []


def test_template_without_metadata() -> None:
    [site] = pod_spec_sites(
        obj("apps/v1", "Deployment", spec={"template": {"metadata": "x", "spec": pod_spec()}})
    )
    assert site.template_metadata is None


def test_mapping_subclasses_are_accepted() -> None:
    manifest = OrderedDict(
        apiVersion="apps/v1",
        kind="Deployment",
        spec=OrderedDict(
            template=OrderedDict(spec=OrderedDict(containers=[OrderedDict(name="a")]))
        ),
    )
    [site] = pod_spec_sites(manifest)
    assert [c.name for c in containers(site)] == ["a"]


def test_format_path() -> None:
    assert format_path(("spec", "containers", 0, "env", 3)) == "spec.containers[0].env[3]"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(()) == ""
