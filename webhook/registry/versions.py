"""vLLM versions: parsing, and deciding which release a workload runs.

Precedence: an explicit option or config value, then the workload annotation
`vllm-env-guard.io/vllm-version`, then the image tag (`vllm/vllm-openai:v0.9.2-cu128`), then the
newest bundled release. A version between bundled releases resolves to the nearest older one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

VERSION_ANNOTATION = "vllm-env-guard.io/vllm-version"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.?post(\d+))?")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    release: tuple[int, int, int, int]
    post: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse `0.9.2`, `v0.6.1.post2`, ... (raises ValueError). Texts longer than
        `CACHED_TEXT` (image tags from a request) are parsed but never cached."""
        if len(text) > CACHED_TEXT:
            return _parse(text)
        return _parse_cached(text)

    @classmethod
    def parse_or_none(cls, text: str) -> Version | None:
        try:
            return cls.parse(text)
        except ValueError:
            return None


CACHED_TEXT = 256  # longest text Version.parse caches
CACHE_ENTRIES = 1024  # at most this many cached parses


def _parse(text: str) -> Version:
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"not a vLLM version: {text[:CACHED_TEXT]!r} (expected e.g. 0.9.2)")
    major, minor, patch, fourth, post = match.groups()
    return Version((int(major), int(minor), int(patch or 0), int(fourth or 0)), int(post or 0))


_parse_cached = functools.lru_cache(maxsize=CACHE_ENTRIES)(_parse)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The bundled release a check assumes, and why. `candidates`: when nothing says which
    release a workload runs, every release it may run (oldest first); checks then hold over
    all of them, and `version` (the newest) is only where single-release checks look."""

    version: str
    reason: str
    candidates: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        return len(self.candidates) > 1


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None (no tag, or a digest only)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


# Image namespaces whose tags carry their own project's version, not vLLM's
# (lmcache/vllm-openai:v0.3.9post2 is LMCache 0.3.9; ghcr.io/llm-d/llm-d:v0.2.0 is llm-d 0.2.0).
OWN_VERSIONED = frozenset({"lmcache", "llm-d"})
_EMBEDDED = re.compile(r"vllm[-_]?v?(\d+\.\d+\.\d+(?:\.post\d+)?)")
# `vllm011` in a tag (verlai/verl:vllm011.latest): the 0.11 series, no patch release named.
_SERIES = re.compile(r"(?:^|[-_.])vllm(\d)(\d{2})(?=$|[-_.])")


def version_from_image(image: str) -> Version | None:
    """The vLLM version an image reference states, else None.

    Read from a vX.Y.Z tag (`vllm/vllm-openai:v0.9.2-cu128`) of an image whose name says vLLM,
    or from a version written after "vllm" in the name (`ray-2.41.0-py310-vllm0.7.0:latest`)
    or in the tag (`rocm/vllm:rocm6.3.1_vllm_0.8.5_20250521`).
    """
    name = image.split("@", 1)[0].rsplit(":", 1)[0] if image_tag(image) else image.split("@", 1)[0]
    path = name.lower().split("/")
    tag = image_tag(image)
    for text in (path[-1], (tag or "").lower()):
        embedded = _EMBEDDED.search(text)
        if embedded:
            return Version.parse(embedded.group(1))
    if tag is None or "vllm" not in path[-1] or OWN_VERSIONED & set(path[:-1]):
        return None
    match = _VERSION.match(tag)
    if match is None or (match.end() < len(tag) and tag[match.end()] not in "-_+."):
        return None
    return Version.parse(tag)


def series_from_image(image: str) -> tuple[int, int] | None:
    """The vLLM series (major, minor) a tag names without a patch release (`vllm011`), else None."""
    tag = image_tag(image)
    match = _SERIES.search(tag.lower()) if tag else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def nearest(version: Version, bundled: Sequence[str]) -> tuple[str, str | None]:
    """The newest bundled release not newer than `version`, and a note when it is not exact."""
    return _nearest(version, tuple(bundled))


@functools.lru_cache(maxsize=1024)  # Versions are small; the few distinct ones come back often
def _nearest(version: Version, bundled: tuple[str, ...]) -> tuple[str, str | None]:
    older = [b for b in bundled if Version.parse(b) <= version]
    if not older:
        return bundled[0], f"older than every bundled release; using the oldest, {bundled[0]}"
    best = older[-1]
    if Version.parse(best) == version:
        return best, None
    if best == bundled[-1]:
        return best, f"newer than every bundled release; using the newest, {best}"
    return best, f"not bundled; using the nearest older release, {best}"


def resolve(bundled: Sequence[str], *, explicit: str | None = None, explicit_source: str = "--vllm-version",
            annotations: Mapping[str, object] | None = None,
            image: str | None = None) -> Resolution:
    """Which bundled release to check against, with the reason (raises ValueError on a bad option)."""
    candidates: list[tuple[str, str]] = []
    if explicit:
        candidates.append((explicit, f"from {explicit_source}"))
    annotation = (annotations or {}).get(VERSION_ANNOTATION)
    if isinstance(annotation, str) and annotation.strip():
        candidates.append((annotation, f"from the annotation {VERSION_ANNOTATION}"))
    for text, why in candidates:
        version = Version.parse_or_none(text)
        if version is None:
            if why.endswith(explicit_source):
                raise ValueError(f"{explicit_source}: {text!r} is not a vLLM version (e.g. 0.9.2)")
            continue
        return _resolution(version, bundled, why)
    if image:
        return _from_image(image, bundled)
    return _unknown(bundled, "no version given")


def _unknown(bundled: Sequence[str], why: str) -> Resolution:
    """A release nothing names: checked against every known one."""
    return Resolution(bundled[-1], f"{why}: checked against every known vLLM release, {bundled[0]} to "
                      f"{bundled[-1]}; pin it with the annotation {VERSION_ANNOTATION}", tuple(bundled))


@functools.lru_cache(maxsize=8)
def _majors(bundled: tuple[str, ...]) -> frozenset[int]:
    """The major versions among the known releases."""
    return frozenset(Version.parse(b).release[0] for b in bundled)


def _from_image(image: str, bundled: Sequence[str]) -> Resolution:
    """The image's own words (a version, then a series), then the distribution table."""
    from webhook.registry import distributions

    tag = image_tag(image)
    version = version_from_image(image)
    if version is not None and version.release[0] in _majors(tuple(bundled)):
        where = f"the image tag {tag}" if tag and _EMBEDDED.search(tag.lower()) else f"the image {image}"
        return _resolution(version, bundled, f"from {where}")
    series = series_from_image(image)
    in_series = [b for b in bundled if Version.parse(b).release[:2] == series]
    if in_series:
        return Resolution(in_series[-1], f"the image tag {tag} names the vLLM {series[0]}.{series[1]} "
                                         f"series; assuming its newest bundled release, {in_series[-1]}")
    row = distributions.match(image)
    if row is not None:
        return _resolution(Version.parse(row.vllm), bundled,
                           f"{image} ships vLLM {row.vllm} (distribution table: {row.source})")
    if _is_vllm_project_image(image) and "@" not in image and (tag or "latest") in MOVING_TAGS:
        return Resolution(bundled[-1], f"the image tag {tag or 'latest'} moves with vLLM's releases; assuming "
                                       f"the newest known release, {bundled[-1]}")
    what = f"tag {tag!r}" if tag else "no version tag"
    return _unknown(bundled, f"image {image} has {what} and is not in the distribution table")


MOVING_TAGS = frozenset({"latest", "nightly", "main"})


def _is_vllm_project_image(image: str) -> bool:
    """An image of vLLM's own Docker Hub namespace (vllm/vllm-openai, vllm/vllm-tpu, ...)."""
    parts = image.split("@", 1)[0].split("/")
    if parts[0] in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        parts = parts[1:]
    return len(parts) == 2 and parts[0] == "vllm"


def _resolution(version: Version, bundled: Sequence[str], why: str) -> Resolution:
    chosen, note = nearest(version, bundled)
    return Resolution(chosen, f"{why}; {note}" if note else why)
