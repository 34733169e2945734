"""The Kubernetes manifests (deploy/k8s, rendered with kubectl kustomize) hold to the deployment contract.

Built-in kinds are validated strictly against the Kubernetes OpenAPI schemas (kubernetes-validate); the
custom resources (KEDA ScaledObject and TriggerAuthentication, RabbitmqCluster) are checked field by field.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from transmute.services.worker.drain import STOP_TIMEOUT

LAYERS = ("base", "dev", "prod")
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes the manifests aim at (matchLabelKeys, PodDisruptionBudget policy/v1...) and the newest."""
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
SECRET_VARIABLES = {
    "TRANSMUTE_BROKER_URL",
    "TRANSMUTE_DATABASE_URL",
    "TRANSMUTE_S3_ACCESS_KEY",
    "TRANSMUTE_S3_SECRET_KEY",
    "TRANSMUTE_API_KEYS",
    "TRANSMUTE_WEBHOOK_SECRET",
}
API, WORKER = "transmute-api", "transmute-worker"
CONVERT_QUEUE = "transmute.convert"
APP_UID = 10001


# ------------------------------------------------------------------------------------------------ helpers


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in objects(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for where, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{where}/{container['name']}", container, spec


def container(docs: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    return one(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def env_of(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in item.get("env", [])}


def config_of(docs: list[dict[str, Any]], deployment: str) -> dict[str, str]:
    """The ConfigMap data a Deployment's container gets through envFrom (the generated, hashed name)."""
    data: dict[str, str] = {}
    for source in container(docs, deployment).get("envFrom", []):
        if "configMapRef" in source:
            data.update(one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    return data


def secret_refs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, str, str | None]]:
    """(where, Secret name, key or None for a whole-Secret envFrom) of every Secret a pod or KEDA reads."""
    for where, item, _ in containers(docs):
        for entry in item.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                yield where, ref["name"], ref["key"]
        for source in item.get("envFrom", []):
            if "secretRef" in source:
                yield where, source["secretRef"]["name"], None
    for auth in objects(docs, "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            yield f"TriggerAuthentication/{auth['metadata']['name']}", ref["name"], ref["key"]


def images(docs: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for where, item, _ in containers(docs):
        yield where, item["image"]
    for cluster in objects(docs, "RabbitmqCluster"):
        yield f"RabbitmqCluster/{cluster['metadata']['name']}", cluster["spec"]["image"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# ------------------------------------------------------------------------------------------ schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("layer", LAYERS)
def test_every_built_in_object_is_valid_against_the_kubernetes_schema_in_strict_mode(renders, layer, version):
    for doc in renders[layer]:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{layer}: {doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {version}: "
                        f"{error.message} at {'.'.join(str(part) for part in error.path)}")


def test_strict_validation_rejects_a_misspelt_field_so_a_pass_means_something(renders):
    api = copy.deepcopy(one(renders["base"], "Deployment", API))
    api["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(("layer", "expected"), [
    ("base", {"ScaledObject", "TriggerAuthentication"}),
    ("dev", {"ScaledObject", "TriggerAuthentication"}),
    ("prod", {"ScaledObject", "TriggerAuthentication", "RabbitmqCluster"}),
])
def test_the_custom_resources_are_the_keda_and_rabbitmq_ones_checked_below(renders, layer, expected):
    custom = {(doc["apiVersion"], doc["kind"]) for doc in renders[layer]
              if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS}
    assert {kind for _, kind in custom} == expected


# ---------------------------------------------------------------------------------------------- KEDA


@pytest.mark.parametrize("layer", LAYERS)
def test_the_scaled_object_scales_the_worker_deployment_on_the_convert_queue_length(renders, layer):
    docs = renders[layer]
    (scaled,) = objects(docs, "ScaledObject")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == WORKER and target.get("kind", "Deployment") == "Deployment"
    one(docs, "Deployment", target["name"])
    assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int)
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    metadata = trigger["metadata"]
    assert metadata["queueName"] == CONVERT_QUEUE
    assert metadata["mode"] == "QueueLength"
    assert metadata["protocol"] == "amqp"
    assert isinstance(metadata["value"], str) and float(metadata["value"]) > 0
    assert "host" not in metadata, "the broker URL holds a password: it belongs in the TriggerAuthentication"
    one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])


@pytest.mark.parametrize("layer", LAYERS)
def test_the_trigger_authentication_takes_the_rabbitmq_host_from_a_secret_key(renders, layer):
    (auth,) = objects(renders[layer], "TriggerAuthentication")
    refs = auth["spec"]["secretTargetRef"]
    assert [ref["parameter"] for ref in refs] == ["host"]
    assert refs[0]["key"] == "host"
    assert refs[0]["name"].startswith("transmute-broker")


@pytest.mark.parametrize("layer", LAYERS)
def test_the_worker_deployment_leaves_its_replica_count_to_the_autoscaler(renders, layer):
    assert "replicas" not in one(renders[layer], "Deployment", WORKER)["spec"]


def test_production_runs_two_to_twenty_workers_and_development_one_to_two(renders):
    (prod,) = objects(renders["prod"], "ScaledObject")
    (dev,) = objects(renders["dev"], "ScaledObject")
    assert (prod["spec"]["minReplicaCount"], prod["spec"]["maxReplicaCount"]) == (2, 20)
    assert (dev["spec"]["minReplicaCount"], dev["spec"]["maxReplicaCount"]) == (1, 2)


# ----------------------------------------------------------------------------------------- secrets


def test_the_base_holds_no_secret_objects(renders):
    assert objects(renders["base"], "Secret") == []


def test_production_holds_no_secret_objects_and_expects_them_to_exist(renders):
    assert objects(renders["prod"], "Secret") == []
    names = {name for _, name, _ in secret_refs(renders["prod"])}
    assert names == {"transmute-broker", "transmute-database", "transmute-s3", "transmute-api-keys",
                     "transmute-webhooks"}


@pytest.mark.parametrize("layer", LAYERS)
def test_credentials_reach_the_containers_only_through_secret_references(renders, layer):
    for where, item, _ in containers(renders[layer]):
        for name, entry in env_of(item).items():
            if name in SECRET_VARIABLES:
                assert "secretKeyRef" in entry.get("valueFrom", {}), f"{where}: {name} is not from a Secret"
    for config in objects(renders[layer], "ConfigMap"):
        leaked = SECRET_VARIABLES & set(config.get("data", {}))
        assert not leaked, f"ConfigMap {config['metadata']['name']} holds credentials: {leaked}"


def test_every_secret_the_development_pods_read_is_generated_with_the_keys_they_read(renders):
    docs = renders["dev"]
    secrets = {secret["metadata"]["name"]: secret.get("data", {}) for secret in objects(docs, "Secret")}
    for where, name, key in secret_refs(docs):
        assert name in secrets, f"{where} reads the Secret {name}, which the dev overlay does not generate"
        if key is not None:
            assert key in secrets[name], f"{where} reads {name}/{key}, which is missing"


def test_the_development_connection_urls_point_at_the_development_services(renders):
    docs = renders["dev"]
    services = {service["metadata"]["name"]: {port["port"] for port in service["spec"]["ports"]}
                for service in objects(docs, "Service")}

    def secret_value(prefix: str, key: str) -> str:
        (secret,) = [s for s in objects(docs, "Secret") if s["metadata"]["name"].startswith(prefix + "-")]
        return base64.b64decode(secret["data"][key]).decode()

    for prefix, key, scheme in [("transmute-broker", "url", "amqp"), ("transmute-broker", "host", "amqp"),
                                ("transmute-database", "url", "postgresql+asyncpg")]:
        url = urlsplit(secret_value(prefix, key))
        assert url.scheme == scheme
        assert url.hostname in services and url.port in services[url.hostname], f"{prefix}/{key}: {url.netloc}"
    host, _, port = config_of(docs, API)["TRANSMUTE_S3_ENDPOINT"].partition(":")
    assert host in services and int(port) in services[host]
    assert secret_value("transmute-s3", "access-key") == secret_value("dev-minio", "MINIO_ROOT_USER")
    assert secret_value("transmute-s3", "secret-key") == secret_value("dev-minio", "MINIO_ROOT_PASSWORD")


# -------------------------------------------------------------------------------- probes, resources


@pytest.mark.parametrize("layer", LAYERS)
def test_every_container_has_cpu_and_memory_requests_and_limits(renders, layer):
    for where, item, _ in containers(renders[layer]):
        resources = item.get("resources", {})
        for part in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(part, {}))
            assert not missing, f"{where}: no {part} for {missing}"


@pytest.mark.parametrize("layer", LAYERS)
def test_every_container_has_liveness_and_readiness_probes(renders, layer):
    for where, item, _ in containers(renders[layer]):
        assert "livenessProbe" in item and "readinessProbe" in item, f"{where} lacks a probe"


@pytest.mark.parametrize("layer", LAYERS)
def test_the_gateway_probes_its_health_routes_on_port_8000(renders, layer):
    api = container(renders[layer], API)
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert ports["http"] == 8000
    for probe, path in [("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")]:
        check = api[probe]["httpGet"]
        assert check["path"] == path and ports.get(check["port"], check["port"]) == 8000
    assert api["args"][:5] == ["api", "--host", "0.0.0.0", "--port", "8000"]


@pytest.mark.parametrize("layer", LAYERS)
def test_the_worker_liveness_is_the_heartbeat_healthcheck_and_it_serves_metrics_on_9191(renders, layer):
    worker = container(renders[layer], WORKER)
    assert worker["args"][0] == "worker"
    assert worker["livenessProbe"]["exec"]["command"] == ["transmute", "healthcheck", "worker"]
    assert {port["name"]: port["containerPort"] for port in worker["ports"]}["metrics"] == 9191
    assert env_of(worker)["TRANSMUTE_METRICS_PORT"]["value"] == "9191"


@pytest.mark.parametrize("layer", LAYERS)
def test_the_worker_grace_period_outlasts_the_drain_and_the_hand_back(renders, layer):
    docs = renders[layer]
    config = config_of(docs, WORKER)
    worker = container(docs, WORKER)
    env = {name: item.get("value") for name, item in env_of(worker).items()}
    timeout = float(config["TRANSMUTE_CONVERSION_TIMEOUT"])
    # On SIGTERM the worker drains for TRANSMUTE_SHUTDOWN_TIMEOUT (default: the conversion timeout), then
    # takes up to 30 s (transmute.services.worker.drain.STOP_TIMEOUT) to stop what is left and hand it back.
    shutdown = float(env.get("TRANSMUTE_SHUTDOWN_TIMEOUT") or config.get("TRANSMUTE_SHUTDOWN_TIMEOUT") or timeout)
    grace = one(docs, "Deployment", WORKER)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > timeout, f"grace {grace} s <= conversion timeout {timeout} s"
    assert grace > shutdown + STOP_TIMEOUT, f"grace {grace} s <= shutdown timeout {shutdown} s + {STOP_TIMEOUT:g} s"


@pytest.mark.parametrize("layer", LAYERS)
def test_the_configuration_sets_the_contract_variables(renders, layer):
    config = config_of(renders[layer], API)
    assert config["TRANSMUTE_LOG_FORMAT"] == "json"
    assert float(config["TRANSMUTE_CONVERSION_TIMEOUT"]) > 0 and float(config["TRANSMUTE_MAX_UPLOAD_MB"]) > 0
    assert config["TRANSMUTE_S3_BUCKET"] and config["TRANSMUTE_S3_SECURE"] in ("true", "false")
    if layer != "base":
        assert config["TRANSMUTE_S3_ENDPOINT"]
    assert config_of(renders[layer], WORKER) == config


# ----------------------------------------------------------------------------------------- security


@pytest.mark.parametrize("layer", LAYERS)
def test_every_pod_runs_as_non_root_without_privilege_escalation_or_capabilities(renders, layer):
    for where, item, spec in containers(renders[layer]):
        pod, own = spec.get("securityContext", {}), item.get("securityContext", {})
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, f"{where}: runAsNonRoot"
        assert own.get("runAsUser", pod.get("runAsUser")) != 0, f"{where}: runs as uid 0"
        assert own.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
        assert own.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities not dropped"
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp"


@pytest.mark.parametrize("layer", LAYERS)
def test_transmute_containers_have_a_read_only_root_and_a_writable_tmp(renders, layer):
    docs = renders[layer]
    for name in (API, WORKER):
        spec = one(docs, "Deployment", name)["spec"]["template"]["spec"]
        item = spec["containers"][0]
        assert item["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["runAsUser"] == APP_UID
        (mount,) = [m for m in item["volumeMounts"] if m["mountPath"] == "/tmp"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert "sizeLimit" in volume["emptyDir"]
        assert spec.get("automountServiceAccountToken") is False


@pytest.mark.parametrize("layer", LAYERS)
def test_every_image_is_pinned_to_a_tag_other_than_latest(renders, layer):
    for where, image in images(renders[layer]):
        name, _, digest = image.partition("@")
        tag = name.rsplit("/", 1)[-1].partition(":")[2]
        assert digest or (tag and tag != "latest"), f"{where}: image {image!r} is not pinned"


def test_both_transmute_deployments_run_the_same_image(renders):
    for layer in LAYERS:
        docs = renders[layer]
        assert container(docs, API)["image"] == container(docs, WORKER)["image"]
    assert container(renders["prod"], API)["image"].startswith("registry.example.com/transmute:")


# --------------------------------------------------------------------------- availability, wiring


@pytest.mark.parametrize("layer", LAYERS)
def test_the_gateway_and_the_workers_each_have_a_disruption_budget(renders, layer):
    docs = renders[layer]
    budgets = objects(docs, "PodDisruptionBudget")
    for name in (API, WORKER):
        labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert any(matches(b["spec"]["selector"]["matchLabels"], labels) for b in budgets), f"no PDB for {name}"


@pytest.mark.parametrize("layer", LAYERS)
def test_every_service_and_budget_selects_some_pods_of_one_component(renders, layer):
    docs = renders[layer]
    templates = [doc["spec"]["template"]["metadata"]["labels"] for doc in docs if doc["kind"] in WORKLOAD_KINDS]
    for doc in objects(docs, "Service") + objects(docs, "PodDisruptionBudget"):
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        selected = [labels for labels in templates if matches(selector, labels)]
        assert len(selected) == 1, f"{doc['kind']}/{doc['metadata']['name']} selects {len(selected)} workloads"


@pytest.mark.parametrize("layer", LAYERS)
def test_every_named_target_port_exists_on_the_selected_pods(renders, layer):
    docs = renders[layer]
    for service in objects(docs, "Service"):
        (spec,) = [s for doc in docs if doc["kind"] in WORKLOAD_KINDS
                   for s in [doc["spec"]["template"]] if matches(service["spec"]["selector"], s["metadata"]["labels"])]
        names = {port.get("name") for item in spec["spec"]["containers"] for port in item.get("ports", [])}
        for port in service["spec"]["ports"]:
            if isinstance(port["targetPort"], str):
                assert port["targetPort"] in names, f"Service/{service['metadata']['name']}: {port['targetPort']}"


def test_development_runs_one_of_each_with_rabbitmq_postgres_and_minio_in_the_cluster(renders):
    docs = renders["dev"]
    assert one(docs, "Deployment", API)["spec"]["replicas"] == 1
    for name, image in [("rabbitmq", "rabbitmq:3"), ("postgres", "postgres:"), ("minio", "minio/minio:")]:
        stateful = one(docs, "StatefulSet", name)
        assert stateful["spec"]["replicas"] == 1
        assert stateful["spec"]["template"]["spec"]["containers"][0]["image"].startswith(image)
        one(docs, "Service", name)
    assert "management" in one(docs, "StatefulSet", "rabbitmq")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {"transmute-dev"}


def test_production_runs_a_three_node_rabbitmq_cluster_with_resources_and_persistence(renders):
    (cluster,) = objects(renders["prod"], "RabbitmqCluster")
    spec = cluster["spec"]
    assert spec["replicas"] == 3
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"]) and "memory" in spec["resources"]["limits"]
    assert spec["persistence"]["storage"]
    assert "consumer_timeout" in spec["rabbitmq"]["additionalConfig"]
    broker_note = "the Cluster Operator names its Service after the cluster"
    assert cluster["metadata"]["name"] == "transmute-rabbitmq", broker_note


def test_production_turns_on_api_keys_and_the_rate_limit(renders):
    docs = renders["prod"]
    api = container(docs, API)
    assert env_of(api)["TRANSMUTE_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "transmute-api-keys"
    amount, _, period = config_of(docs, API)["TRANSMUTE_RATE_LIMIT"].partition("/")
    assert int(amount) > 0 and period in ("second", "minute", "hour", "day")
    assert "TRANSMUTE_API_KEYS" not in env_of(container(renders["dev"], API))


def test_production_gateways_share_a_redis_of_the_overlay_for_the_limit_and_task_states(renders):
    """Without it each gateway pod counts its own rate limit and streams learn of other pods' changes late."""
    from urllib.parse import urlsplit

    docs = renders["prod"]
    url = urlsplit(config_of(docs, API)["TRANSMUTE_REDIS_URL"])
    assert url.scheme == "redis"
    service = one(docs, "Service", url.hostname)
    assert url.port in [port["port"] for port in service["spec"]["ports"]]
    redis = one(docs, "Deployment", url.hostname)["spec"]["template"]["spec"]["containers"][0]
    assert redis["image"].startswith("redis:")
    assert "TRANSMUTE_REDIS_URL" not in config_of(renders["dev"], API)  # one gateway in development: per process


@pytest.mark.parametrize("layer", OVERLAYS)
def test_the_gateway_trusts_x_forwarded_for_from_the_pod_network_only(renders, layer, monkeypatch):
    """Behind the ingress every client would share the ingress pod's rate-limit bucket without it."""
    from transmute.settings import ServerConfig

    monkeypatch.setenv("TRANSMUTE_TRUSTED_PROXIES", config_of(renders[layer], API)["TRANSMUTE_TRUSTED_PROXIES"])
    networks = [ipaddress.ip_network(item) for item in ServerConfig.from_env().trusted_proxies]
    assert networks and all(network.is_private and network.prefixlen >= 8 for network in networks), networks


def test_production_autoscales_at_least_three_gateways(renders):
    docs = renders["prod"]
    (hpa,) = objects(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == API and hpa["spec"]["minReplicas"] == 3
    assert "replicas" not in one(docs, "Deployment", API)["spec"], "the HPA owns the gateway's replica count"


def test_production_spreads_gateways_and_workers_over_zones_and_nodes(renders):
    for name in (API, WORKER):
        spec = one(renders["prod"], "Deployment", name)["spec"]["template"]
        keys = {c["topologyKey"] for c in spec["spec"]["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in spec["spec"]["topologySpreadConstraints"]:
            assert matches(constraint["labelSelector"]["matchLabels"], spec["metadata"]["labels"])


def test_the_worker_runs_one_conversion_per_pod(renders):
    for layer in LAYERS:
        worker = container(renders[layer], WORKER)
        assert worker["args"] == ["worker", "--processes", "1", "--threads", "1"]
