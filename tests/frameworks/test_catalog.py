"""The catalog: virtual pods from env maps, config-added kinds, Knative's link default, docs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from webhook.config import ConfigError, load_config
from webhook.detect import judge_site
from webhook.engine import Item, Settings, analyze
from webhook.frameworks import FRAMEWORKS
from webhook.frameworks.docs import DOCS_PATH, render_markdown
from webhook.kube import containers, pod_spec_sites, service_links_enabled
from webhook.manifests import load_text
from webhook.rules import CATALOG as RULES

ROOT = Path(__file__).resolve().parents[2]


def load(text: str) -> dict:
    [document] = load_text(textwrap.dedent(text), "x.yaml")
    assert document.obj is not None
    return document.obj  # type: ignore[return-value]


def config(tmp_path: Path, text: str):  # noqa: ANN201
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(str(path), known_rules=RULES)


def test_ray_env_vars_merge_as_ray_merges_them() -> None:
    service = load("""\
        apiVersion: ray.io/v1
        kind: RayService
        metadata: {name: llm}
        spec:
          serveConfigV2: |
            applications:
            - name: app
              import_path: ray.serve.llm:build_openai_app
              runtime_env:
                env_vars: {VLLM_A: app, VLLM_B: app}
              deployments:
              - name: one
                ray_actor_options: {runtime_env: {env_vars: {VLLM_B: one}}}
              - name: two
          rayClusterConfig: {headGroupSpec: {template: {spec: {containers: [{name: h, image: img:1}]}}}}
        """)
    virtual = [s for s in pod_spec_sites(service) if s.virtual]
    assert [s.role for s in virtual] == ["serve:app/one", "serve:app"]  # "two" has the application's only
    [one] = [c.container for c in containers(virtual[0])]
    assert [(e["name"], e["value"], e.line) for e in one["env"]] == [
        ("VLLM_A", "app", 10), ("VLLM_B", "app", 10), ("VLLM_B", "one", 13)]  # the last one wins
    assert one["image"] == "img:1" and not service_links_enabled(virtual[0].spec)
    assert virtual[0].template_metadata == {"annotations": {"vllm-env-guard.io/vllm": "true"}}


def test_unparseable_serve_config_gives_no_virtual_pod() -> None:
    service = load("""\
        apiVersion: ray.io/v1
        kind: RayService
        metadata: {name: llm}
        spec: {serveConfigV2: "applications: [unclosed"}
        """)
    assert [s for s in pod_spec_sites(service) if s.virtual] == []


def test_custom_kind_from_config(tmp_path: Path) -> None:
    loaded = config(tmp_path, """\
        frameworks:
          custom:
          - apiVersion: example.com/v1
            kind: InferenceEngine
            podTemplates: [spec.engine.template]
            envMaps: [{path: spec.engineEnv, runsVllm: true, image: spec.engineImage}]
        """)
    obj = load("""\
        apiVersion: example.com/v1
        kind: InferenceEngine
        metadata: {name: e}
        spec:
          engineImage: vllm/vllm-openai:v0.9.2
          engineEnv:
            VLLM_USE_V1: "true"
          engine:
            template:
              metadata: {labels: {app: e}}
              spec: {containers: [{name: main, image: busybox}]}
        """)
    sites = pod_spec_sites(obj, loaded.frameworks)
    assert [(s.path, s.role, s.virtual) for s in sites] == [
        (("spec", "engine", "template", "spec"), "", False), (("spec", "engineEnv"), "engineEnv", True)]
    findings = analyze([Item(obj, "x.yaml")], Settings(frameworks=loaded.frameworks))
    assert [(f.rule, f.line, f.container, f.vllm_version) for f in findings] == [
        ("env-parse-error", 7, "engineEnv", "0.9.2")]
    assert pod_spec_sites(obj)[0].path == ("spec", "engine", "template", "spec")  # the walk finds the template only


def test_knative_links_config(tmp_path: Path) -> None:
    text = """\
        apiVersion: v1
        kind: Service
        metadata: {name: vllm}
        spec: {ports: [{port: 8000}]}
        ---
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {name: llm}
        spec: {template: {spec: {containers: [{image: "vllm/vllm-openai:v0.9.2"}]}}}
        """
    items = [Item(d.obj) for d in load_text(textwrap.dedent(text), "x.yaml") if d.obj is not None]

    def on_revision(settings: Settings) -> list[str]:
        return [f.rule for f in analyze(items, settings) if f.object.kind == "Service" and f.object.api_version
                != "v1"]

    assert on_revision(Settings()) == []
    links_on = config(tmp_path, "frameworks: {knative: {enableServiceLinks: true}}\n").frameworks
    assert on_revision(Settings(frameworks=links_on)) == ["service-link-collision"]


@pytest.mark.parametrize(("text", "message"), [
    ("frameworks: [x]\n", "frameworks: expected a mapping"),
    ("frameworks: {knativ: {}}\n", "unknown key 'knativ'"),
    ("frameworks: {knative: {enableServiceLinks: maybe}}\n", "frameworks.knative: expected"),
    ("frameworks:\n  custom:\n  - kind: X\n    podTemplates: spec.template\n",
     "c.yaml:3: frameworks.custom[0]: apiVersion: expected group/version"),
    ("frameworks:\n  custom:\n  - {apiVersion: a/v1, kind: X, podSpecs: [1]}\n", "podSpecs: expected a list"),
    ("frameworks:\n  custom:\n  - {apiVersion: a/v1, kind: X, envMaps: [{runsVllm: yes}]}\n", "envMaps: expected"),
])
def test_bad_frameworks_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(tmp_path, text)
    assert message in str(error.value)


def test_docs_frameworks_md_is_current() -> None:
    page = render_markdown(FRAMEWORKS)
    assert (ROOT / DOCS_PATH).read_text(encoding="utf-8") == page, "run scripts/gen-docs"
    for framework in FRAMEWORKS:
        assert f"\n## {framework.name}\n" in page
        for kind in framework.kinds:
            assert f"`{kind.group}/{kind.kind}`" in page


@pytest.mark.parametrize(("text", "judged"), [
    ("""\
     apiVersion: serving.kserve.io/v1alpha1
     kind: LLMInferenceService
     metadata: {name: qwen}
     spec:
       template: {containers: [{name: main}, {name: proxy, image: envoy:1}]}
       router: {scheduler: {template: {containers: [{name: main}]}}}
     """, [("main", True), ("proxy", False), ("main", None)]),
    ("""\
     apiVersion: llm-d.ai/v1alpha1
     kind: ModelService
     metadata: {name: llama}
     spec:
       decode: {containers: [{name: vllm, args: [--served-model-name, x]}]}
       endpointPicker: {containers: [{name: epp}]}
     """, [("vllm", True), ("epp", None)]),
])
def test_containers_a_controller_runs_vllm_in(text: str, judged: list[tuple[str, bool | None]]) -> None:
    obj = load(text)
    assert [(c.name, judge_site(s, c.container).runs) for s in pod_spec_sites(obj) for c in containers(s)] == judged
