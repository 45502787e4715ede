"""The distribution table: rows, matching, and the pins the builder reads."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

from webhook.registry import distributions
from webhook.registry.versions import Version

ROOT = Path(__file__).resolve().parents[2]


def _builder():  # noqa: ANN202 - the script, loaded as a module
    loader = importlib.machinery.SourceFileLoader("update_distributions", str(ROOT / "scripts" / "update-distributions"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_every_row_names_a_release_and_its_source() -> None:
    rows = distributions.rows()
    assert rows
    for row in rows:
        Version.parse(row.vllm)
        assert row.images and row.tag and row.source.strip()
    assert len({(r.images, r.tag) for r in rows}) == len(rows)


@pytest.mark.parametrize(("image", "repository", "tag"), [
    ("kserve/huggingfaceserver:v0.15.2", "kserve/huggingfaceserver", "v0.15.2"),
    ("docker.io/kserve/huggingfaceserver:v0.15.2-gpu", "kserve/huggingfaceserver", "v0.15.2-gpu"),
    ("index.docker.io/library/python:3.12", "python", "3.12"),
    ("registry.example.com:5000/a/b", "registry.example.com:5000/a/b", None),
    ("rayproject/ray-llm:2.60.0-py311@sha256:" + "a" * 64, "rayproject/ray-llm", "2.60.0-py311"),
])
def test_split_image(image: str, repository: str, tag: str | None) -> None:
    assert distributions.split_image(image) == (repository, tag)


def test_a_tag_matches_whole_or_as_a_prefix_before_a_separator() -> None:
    row = distributions.Row(("kserve/huggingfaceserver",), "v0.15.1", "0.8.5", "test")
    table = [row]
    assert distributions.match("kserve/huggingfaceserver:v0.15.1", table) is row
    assert distributions.match("kserve/huggingfaceserver:v0.15.1-gpu", table) is row
    assert distributions.match("kserve/huggingfaceserver:v0.15.10", table) is None
    assert distributions.match("other/huggingfaceserver:v0.15.1", table) is None
    assert distributions.match("kserve/huggingfaceserver", table) is None


def test_the_builder_reads_exact_pins_only() -> None:
    builder = _builder()
    exact = 'Name: ray\nRequires-Dist: vllm[audio]==0.29.0; extra == "llm"\n'
    ranged = 'Name: ray\nRequires-Dist: vllm>=0.7.2; extra == "llm"\n'
    other_extra = 'Name: ray\nRequires-Dist: vllm==0.9.0; extra == "test"\n'
    assert builder._RAY_PIN.search(exact).group(1) == "0.29.0"
    assert builder._RAY_PIN.search(ranged) is None and builder._RAY_PIN.search(other_extra) is None
    dockerfile = "FROM x\nARG VLLM_VERSION=0.8.5\nRUN pip install vllm==${VLLM_VERSION}\n"
    assert builder._KSERVE_PIN.search(dockerfile).group(1) == "0.8.5"
