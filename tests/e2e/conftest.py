"""Fixtures for tests against a real kube-apiserver (see controlplane.py).

Every test under tests/e2e is marked `e2e`. Without KUBEBUILDER_ASSETS they
skip, unless VEG_REQUIRE_E2E=1, which turns the skip into a failure (for CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from kubernetes import client as k8s_client

from .controlplane import ControlPlane

HERE = Path(__file__).parent
NO_ASSETS = "KUBEBUILDER_ASSETS is not set; run scripts/envtest-assets"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory `e2e`."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test, or fail it when VEG_REQUIRE_E2E=1 says e2e tests must run."""
    if os.environ.get("VEG_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason} (VEG_REQUIRE_E2E=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def assets_dir() -> str:
    """The KUBEBUILDER_ASSETS directory (kube-apiserver, etcd, kubectl, helm)."""
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    if not assets:
        skip_or_fail(NO_ASSETS)
    return assets


@pytest.fixture(scope="session")
def control_plane(assets_dir: str) -> Iterator[ControlPlane]:
    """One etcd + kube-apiserver for the whole session; stopped and wiped at the end."""
    with ControlPlane(assets_dir) as cp:
        yield cp


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    """A fresh namespace. Never deleted: without controllers it would stay Terminating."""
    body = k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(generate_name="e2e-"))
    created = k8s_client.CoreV1Api(control_plane.api_client).create_namespace(body)
    assert created.metadata is not None and created.metadata.name
    return created.metadata.name
