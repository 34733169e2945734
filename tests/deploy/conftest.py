"""Fixtures of the deployment tests: the kustomize renders of deploy/k8s, done once per session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.deploy import LAYERS, render


@pytest.fixture(scope="session")
def renders() -> dict[str, list[dict[str, Any]]]:
    """Each layer's render: {"base": [...objects], "dev": [...], "prod": [...]}."""
    return {name: render(path) for name, path in LAYERS.items()}
