"""deploy/compose/compose.yaml: valid per the Compose specification's JSON schema (vendored beside this file, see
compose-spec.md), every TRANSMUTE_* variable it sets a declared setting, and the same settings, commands and
health checks as the Kubernetes manifests, all without a container engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.deploy import K8S, REPO
from transmute.settings import SECTIONS

COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
INFRASTRUCTURE = {"rabbitmq", "postgres", "minio", "redis"}
LONG_RUNNING = INFRASTRUCTURE | {"api", "worker"}
NOT_IN_COMPOSE = {"TRANSMUTE_TRUSTED_PROXIES", "TRANSMUTE_S3_CREATE_BUCKET"}
"""Dev-overlay settings about the cluster's own network (the ingress controller's pod range), and the bucket the
dev overlay has the gateway make (compose makes it with its one-shot `minio-bucket` service)."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def k8s(path: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / path).read_text()) if doc]


def container(path: str) -> dict[str, Any]:
    return k8s(path)[0]["spec"]["template"]["spec"]["containers"][0]


def literals(path: str) -> dict[str, str]:
    generator = k8s(path)[0]["configMapGenerator"][0]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in service["environment"].items()}


def declared_settings() -> set[str]:
    return {section.env_name(name) for section in SECTIONS for name in section.model_fields}


def test_the_compose_file_is_valid_per_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda error: list(error.path))
    assert [f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors] == []


def test_the_schema_check_catches_a_mistake(compose):
    broken = {**compose, "services": {**compose["services"], "api": {**compose["services"]["api"], "ports": 8000}}}
    assert not jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_every_transmute_variable_it_sets_is_a_declared_setting(compose):
    declared = declared_settings()
    set_here = {name for service in compose["services"].values() for name in service.get("environment") or {}
                if name.startswith("TRANSMUTE_")}
    assert set_here, "the gateway and the worker are configured by TRANSMUTE_* variables"
    assert sorted(set_here - declared) == []


def test_it_runs_the_distributed_mode_with_health_checks_on_every_long_running_service(compose):
    services = compose["services"]
    assert set(services) >= LONG_RUNNING
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    dockerfile = REPO / "deploy" / "docker" / "Dockerfile"
    for name in ("api", "worker"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).resolve() == dockerfile
        waits_for = {dependency for dependency, how in services[name]["depends_on"].items()
                     if how["condition"] in ("service_healthy", "service_completed_successfully")}
        assert {"rabbitmq", "minio-bucket"} <= waits_for
    assert {"postgres", "redis"} <= set(services["api"]["depends_on"])


def test_the_bucket_job_creates_the_bucket_transmute_is_told_to_use(compose):
    job = compose["services"]["minio-bucket"]
    bucket = env_of(compose["services"]["api"])["TRANSMUTE_S3_BUCKET"]
    assert f"mc mb --ignore-existing local/{bucket}" in " ".join(job["entrypoint"])
    assert job["depends_on"]["minio"]["condition"] == "service_healthy"
    minio = compose["services"]["minio"]["environment"]
    api = env_of(compose["services"]["api"])
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (api["TRANSMUTE_S3_ACCESS_KEY"],
                                                                        api["TRANSMUTE_S3_SECRET_KEY"])


def test_the_gateway_and_the_worker_have_the_settings_and_commands_of_the_k8s_manifests(compose):
    expected = literals("base/kustomization.yaml") | literals("overlays/dev/kustomization.yaml")
    expected = {name: value for name, value in expected.items() if name not in NOT_IN_COMPOSE}
    for name, manifest in (("api", "base/api-deployment.yaml"), ("worker", "base/worker-deployment.yaml")):
        service, k8s_container = compose["services"][name], container(manifest)
        env = env_of(service)
        assert {key: env.get(key) for key in expected} == expected, name
        plain = {item["name"]: item["value"] for item in k8s_container["env"] if "value" in item}
        from_secrets = {item["name"] for item in k8s_container["env"] if "valueFrom" in item}
        assert {key: env.get(key) for key in plain} == plain, name
        assert from_secrets <= set(env), name  # the same variables; the dev overlay's development values
        assert service["command"] == k8s_container["args"], name
        assert service["user"] == "10001:10001" and service["read_only"] is True


def test_the_workers_stop_grace_outlasts_a_conversion(compose):
    worker = compose["services"]["worker"]
    timeout = float(env_of(worker)["TRANSMUTE_CONVERSION_TIMEOUT"])
    assert float(worker["stop_grace_period"].removesuffix("s")) > timeout + 30


def test_the_gateway_uses_the_redis_it_starts(compose):
    assert "redis" in compose["services"]
    assert env_of(compose["services"]["api"]).get("TRANSMUTE_REDIS_URL") == "redis://redis:6379/0", \
        "set TRANSMUTE_REDIS_URL: redis://redis:6379/0 for the api in deploy/compose/compose.yaml"


def test_webhook_deliveries_are_signed_with_a_well_formed_secret(compose):
    from transmute.settings import WebhookConfig

    for name in ("api", "worker"):
        secret = env_of(compose["services"][name]).get("TRANSMUTE_WEBHOOK_SECRET", "")
        assert secret.startswith("whsec_"), name
        WebhookConfig.from_env(secret=secret)  # refuses a malformed one
