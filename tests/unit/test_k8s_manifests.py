"""The Kubernetes manifests load as YAML and keep the Ray cluster closed: token authentication on, no
application Secret in a Ray pod, the dashboard open to the KubeRay operator alone, and the API and the
workers holding the token and reaching the head's client port only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _documents() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (document["kind"], document["metadata"]["name"]): document
        for path in sorted(K8S.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    }


def _ray_pod_specs(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    return [group["template"]["spec"] for group in groups]


def test_the_ray_cluster_uses_token_auth_and_no_application_secret():
    cluster = _documents()[("RayCluster", "scopix-ray")]

    assert cluster["spec"]["authOptions"] == {"mode": "token", "secretName": "scopix-ray-auth"}
    for spec in _ray_pod_specs(cluster):
        for container in spec["containers"]:
            assert "envFrom" not in container and "env" not in container, container["name"]
        assert "volumes" not in spec


def test_the_api_and_the_workers_hold_the_ray_token():
    documents = _documents()
    for name in ("scopix-api", "scopix-worker"):
        (container,) = documents[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "scopix-ray-auth", "key": "auth_token"}
        assert env["SCOPIX_ENGINE__RAY_ADDRESS"]["value"] == "ray://scopix-ray-head-svc:10001"


def test_network_policies_close_the_dashboard_and_the_cluster():
    documents = _documents()
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
