"""Which vLLM release a workload runs."""

from __future__ import annotations

import pytest

from webhook.registry import bundled_versions, resolve
from webhook.registry.versions import Version, image_tag, version_from_image

BUNDLED = bundled_versions()


@pytest.mark.parametrize(("image", "version"), [
    ("vllm/vllm-openai:v0.9.2", "0.9.2"),
    ("vllm/vllm-openai:v0.9.2-cu128", "0.9.2"),
    ("docker.io/vllm/vllm-openai:0.10.1.1", "0.10.1.1"),
    ("registry.example.com:5000/team/vllm:v0.6.1.post2", "0.6.1.post2"),
    ("ghcr.io/example/vllm:v0.8.5@sha256:" + "a" * 64, "0.8.5"),
    ("public.ecr.aws/neuron/vllm:v0.7.3_neuron", "0.7.3"),
])
def test_version_from_image(image: str, version: str) -> None:
    assert version_from_image(image) == Version.parse(version)


@pytest.mark.parametrize("image", ["vllm/vllm-openai:latest", "vllm/vllm-openai:nightly",
                                   "vllm/vllm-openai", "vllm/vllm-openai@sha256:" + "b" * 64,
                                   "vllm/vllm-openai:v1abc", "localhost:5000/vllm"])
def test_images_without_a_version(image: str) -> None:
    assert version_from_image(image) is None
    resolution = resolve(BUNDLED, image=image)
    assert resolution.version == BUNDLED[-1]
    assert "newest" in resolution.reason


def test_precedence_option_then_annotation_then_image() -> None:
    annotations = {"vllm-env-guard.io/vllm-version": "0.9.2"}
    image = "vllm/vllm-openai:v0.8.1"
    assert resolve(BUNDLED, explicit="0.10.0", annotations=annotations, image=image).version == "0.10.0"
    by_annotation = resolve(BUNDLED, annotations=annotations, image=image)
    assert by_annotation.version == "0.9.2" and "annotation" in by_annotation.reason
    assert resolve(BUNDLED, image=image).version == "0.8.1"
    assert resolve(BUNDLED).version == BUNDLED[-1]


def test_between_releases_resolves_to_the_nearest_older() -> None:
    between = resolve(BUNDLED, image="vllm/vllm-openai:v0.8.6")
    assert between.version == "0.8.5.post1" and "nearest older" in between.reason
    future = resolve(BUNDLED, explicit="0.99.0")
    assert future.version == BUNDLED[-1] and "newer than every" in future.reason
    ancient = resolve(BUNDLED, explicit="0.4.0")
    assert ancient.version == BUNDLED[0] and "older than every" in ancient.reason


def test_a_bad_explicit_version_is_an_error_and_a_bad_annotation_is_skipped() -> None:
    with pytest.raises(ValueError, match="not a vLLM version"):
        resolve(BUNDLED, explicit="banana")
    skipped = resolve(BUNDLED, annotations={"vllm-env-guard.io/vllm-version": "banana"},
                      image="vllm/vllm-openai:v0.9.2")
    assert skipped.version == "0.9.2"


def test_image_tag() -> None:
    assert image_tag("host:5000/a/b:tag@sha256:x") == "tag"
    assert image_tag("host:5000/a/b") is None


def test_version_ordering() -> None:
    assert Version.parse("0.6.1") < Version.parse("0.6.1.post1") < Version.parse("0.6.2")
    assert Version.parse("0.9.0") < Version.parse("0.9.0.1") < Version.parse("0.9.1")
    assert Version.parse("0.10.0") > Version.parse("0.9.2")


@pytest.mark.parametrize(("image", "version"), [
    ("public.ecr.aws/data-on-eks/ray-2.41.0-py310-cu118-vllm0.7.0:latest", "0.7.0"),
    ("example.com/neuron-sdk2.20-vllm-0.5.0-neuron:v8", "0.5.0"),
])
def test_version_written_in_the_image_name(image: str, version: str) -> None:
    assert version_from_image(image) == Version.parse(version)


@pytest.mark.parametrize("image", ["lmcache/vllm-openai:v0.3.9post2", "ghcr.io/llm-d/llm-d:v0.2.0",
                                   "rayproject/ray-llm:2.56.0-py312-cu130"])
def test_tags_of_other_projects_are_not_vllm_versions(image: str) -> None:
    assert version_from_image(image) is None


def test_a_tag_with_a_major_vllm_never_had_is_not_trusted() -> None:
    resolution = resolve(BUNDLED, image="opea/vllm-gaudi:1.22.0")
    assert resolution.version == BUNDLED[-1] and "assuming the newest" in resolution.reason
