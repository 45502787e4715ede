"""Which vLLM release a workload runs."""

from __future__ import annotations

import pytest

from webhook.registry import bundled_versions, distributions, resolve
from webhook.registry.versions import Version, image_tag, series_from_image, version_from_image

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


@pytest.mark.parametrize("image", ["vllm/vllm-openai:latest", "vllm/vllm-openai:nightly", "vllm/vllm-openai",
                                   "docker.io/vllm/vllm-openai:latest"])
def test_moving_tags_of_vllms_images_are_the_newest_known_release(image: str) -> None:
    assert version_from_image(image) is None
    resolution = resolve(BUNDLED, image=image)
    assert resolution.version == BUNDLED[-1] and not resolution.unknown
    assert f"assuming the newest known release, {BUNDLED[-1]}" in resolution.reason


@pytest.mark.parametrize("image", ["vllm/vllm-openai@sha256:" + "b" * 64, "vllm/vllm-openai:v1abc",
                                   "localhost:5000/vllm", "myorg/vllm:latest"])
def test_images_without_a_version_are_checked_against_every_release(image: str) -> None:
    assert version_from_image(image) is None
    resolution = resolve(BUNDLED, image=image)
    assert resolution.unknown and resolution.candidates == tuple(BUNDLED)
    assert f"every known vLLM release, {BUNDLED[0]} to {BUNDLED[-1]}" in resolution.reason


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
    assert resolution.unknown and "every known vLLM release" in resolution.reason


def test_a_version_embedded_in_the_tag() -> None:
    resolution = resolve(BUNDLED, image="rocm/vllm:rocm6.3.1_vllm_0.8.5_20250521")
    assert resolution.version == "0.8.5"
    assert "rocm6.3.1_vllm_0.8.5_20250521" in resolution.reason


def test_a_series_in_the_tag_is_its_newest_bundled_release() -> None:
    newest_011 = [v for v in BUNDLED if Version.parse(v).release[:2] == (0, 11)][-1]
    resolution = resolve(BUNDLED, image="verlai/verl:vllm011.latest")
    assert resolution.version == newest_011
    assert "0.11 series" in resolution.reason and f"newest bundled release, {newest_011}" in resolution.reason


@pytest.mark.parametrize("image", ["verlai/verl:vllm0110", "verlai/verl:vllm011x9", "example/app:v0.11.0"])
def test_what_is_not_a_series(image: str) -> None:
    assert series_from_image(image) is None


def test_an_image_of_the_distribution_table_resolves_to_its_pin_and_names_the_source() -> None:
    for row in distributions.rows():
        if not Version.parse(row.vllm) >= Version.parse(BUNDLED[0]):
            continue
        image = f"docker.io/{row.images[0]}:{row.tag}-gpu"
        resolution = resolve(BUNDLED, image=image)
        assert Version.parse(resolution.version) <= Version.parse(row.vllm), image
        assert row.source in resolution.reason and "distribution table" in resolution.reason


def test_kserve_huggingfaceserver_ships_its_dockerfile_pin() -> None:
    resolution = resolve(BUNDLED, image="kserve/huggingfaceserver:v0.15.2-gpu")
    assert resolution.version == "0.8.5"
    assert "kserve/kserve v0.15.2" in resolution.reason


def test_an_unknown_image_says_it_is_not_in_the_table() -> None:
    resolution = resolve(BUNDLED, image="example.com/team/llm-server:2025.11")
    assert resolution.unknown
    assert "not in the distribution table" in resolution.reason and "every known vLLM release" in resolution.reason


def test_long_texts_are_parsed_but_not_cached_and_the_cache_is_bounded() -> None:
    from webhook.registry import versions

    before = versions._parse_cached.cache_info()
    assert before.maxsize == versions.CACHE_ENTRIES
    long_tag = "0.9.2-" + "x" * versions.CACHED_TEXT
    assert Version.parse(long_tag) == Version.parse("0.9.2")
    after = versions._parse_cached.cache_info()
    assert after.currsize <= before.currsize + 1  # only "0.9.2" may have been added
    with pytest.raises(ValueError) as error:
        Version.parse("y" * 100_000)
    assert len(str(error.value)) < 2 * versions.CACHED_TEXT


def test_an_image_that_runs_a_platform_plugin() -> None:
    from webhook.registry.plugins import load_plugin, plugin_for_image, plugin_versions

    releases = plugin_versions("vllm-ascend")
    exact = plugin_for_image(f"quay.io/ascend/vllm-ascend:v{releases[0]}-openeuler")
    assert exact is not None and exact[:2] == ("vllm-ascend", releases[0]) and "from its tag" in exact[2]
    newer = plugin_for_image("quay.io/ascend/vllm-ascend:v99.0.0")
    assert newer is not None and newer[1] == releases[-1] and "nearest older" in newer[2]
    assert plugin_for_image("vllm/vllm-openai:v0.9.2") is None
    assert len(load_plugin("vllm-ascend", releases[-1])) > 0
